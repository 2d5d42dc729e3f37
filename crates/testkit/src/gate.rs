//! A gate in ragshift's run journal: the unit of work that would be the third to succeed in
//! its run waits, inside its own data transaction, until the test opens the gate. Tests use it
//! to act at an exact point of a run (kill it, take its lock, write to the source) without
//! sleeping.

use tokio_postgres::Client;

use crate::sql::wait_until;

/// The advisory lock the gate waits on.
const KEY: i64 = 4242;

/// True while a unit waits at the gate.
pub const WAITING: &str = "SELECT EXISTS (SELECT 1 FROM pg_locks \
     WHERE locktype = 'advisory' AND objid = 4242 AND NOT granted)";

/// Closes the gate in the journal whose schema is `schema` (already quoted), which must exist:
/// the update marking a unit succeeded waits once two units of its run have.
pub async fn close(c: &Client, schema: &str) {
    let sql = format!(
        "CREATE FUNCTION {schema}.test_gate() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
           IF NEW.status = 'succeeded' AND (SELECT count(*) FROM {schema}.units
                WHERE status = 'succeeded' AND run_id = NEW.run_id) >= 2 THEN
             PERFORM pg_advisory_xact_lock_shared({KEY});
           END IF;
           RETURN NEW;
         END $$;
         CREATE TRIGGER test_gate BEFORE UPDATE ON {schema}.units
           FOR EACH ROW EXECUTE FUNCTION {schema}.test_gate();
         SELECT pg_advisory_lock({KEY});"
    );
    if let Err(e) = c.batch_execute(&sql).await {
        panic!("closing the journal gate: {e}");
    }
}

/// Waits until a unit is held at the gate (`what` names that moment in a time-out).
pub async fn wait_held(c: &Client, what: &str) {
    wait_until(c, WAITING, what).await;
}

/// Opens the gate: the held unit (and every later one) goes on.
pub async fn open(c: &Client) {
    if let Err(e) = c
        .batch_execute(&format!("SELECT pg_advisory_unlock({KEY})"))
        .await
    {
        panic!("opening the journal gate: {e}");
    }
}

/// Removes the gate from the journal in `schema` (quoted); this waits for any transaction
/// still holding the units table.
pub async fn remove(c: &Client, schema: &str) {
    if let Err(e) = c
        .batch_execute(&format!("DROP TRIGGER test_gate ON {schema}.units"))
        .await
    {
        panic!("removing the journal gate: {e}");
    }
}
