//! One-line reads for test assertions — the first column of a query's rows, so a test states
//! the SQL and the expected value and nothing else — and a condition polled with a deadline
//! (tests never sleep to synchronise).

use std::time::{Duration, Instant};

use tokio_postgres::types::FromSqlOwned;
use tokio_postgres::GenericClient;

/// The first column of the one row `sql` returns; panics naming the query if it fails or
/// returns no row (a broken fixture should fail loudly).
pub async fn scalar<T: FromSqlOwned>(c: &impl GenericClient, sql: &str) -> T {
    match c.query_one(sql, &[]).await {
        Ok(row) => row.get(0),
        Err(e) => panic!("{sql}: {e}"),
    }
}

/// The first column of every row `sql` returns, in order.
pub async fn column<T: FromSqlOwned>(c: &impl GenericClient, sql: &str) -> Vec<T> {
    match c.query(sql, &[]).await {
        Ok(rows) => rows.iter().map(|r| r.get(0)).collect(),
        Err(e) => panic!("{sql}: {e}"),
    }
}

/// Polls `sql` (a query returning one boolean) until it is true; fails naming `what` after a
/// minute.
pub async fn wait_until(c: &impl GenericClient, sql: &str, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !scalar::<bool>(c, sql).await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
