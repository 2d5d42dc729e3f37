//! The sequences that number the table's rows: after a move, each identity or serial column
//! of the source must have a sequence on the target standing at or past the largest value the
//! target holds, or the application's next insert fails with a duplicate key (or gets no id).

use serde::Serialize;
use tokio_postgres::GenericClient;

use ragshift_store::ident::{quote_ident, Layout};
use ragshift_store::StoreError;

/// One numbered column as found on the target.
#[derive(Debug, Clone, Serialize)]
pub struct SequenceCheck {
    /// The column.
    pub column: String,
    /// The target's sequence, if it has one.
    pub sequence: Option<String>,
    /// Where the target's sequence stands (its next value is one more once used).
    pub value: Option<i64>,
    /// The largest value of the column on the target.
    pub largest: Option<i64>,
    /// What is wrong, if anything.
    pub problem: Option<String>,
}

/// Columns of `layout`'s table numbered by a sequence (identity or serial).
async fn numbered_columns(
    client: &impl GenericClient,
    layout: &Layout,
) -> Result<Vec<(String, Option<String>)>, StoreError> {
    let rows = client
        .query(
            "SELECT a.attname::text, pg_get_serial_sequence($1, a.attname::text)
               FROM pg_attribute a
              WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped
              ORDER BY a.attnum",
            &[&layout.qualified()],
        )
        .await
        .map_err(|e| {
            StoreError::query(
                format!("reading the sequences of {}", layout.display_name()),
                e,
            )
        })?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// Checks every column the source numbers by a sequence on the target.
pub async fn check(
    source: &impl GenericClient,
    source_layout: &Layout,
    target: &impl GenericClient,
    target_layout: &Layout,
) -> Result<Vec<SequenceCheck>, StoreError> {
    let numbered: Vec<String> = numbered_columns(source, source_layout)
        .await?
        .into_iter()
        .filter_map(|(c, s)| s.map(|_| c))
        .collect();
    let on_target = numbered_columns(target, target_layout).await?;
    let mut checks = Vec::new();
    for column in numbered {
        let sequence = on_target
            .iter()
            .find(|(c, _)| *c == column)
            .and_then(|(_, s)| s.clone());
        let Some(seq) = sequence.clone() else {
            checks.push(SequenceCheck {
                problem: Some(format!(
                    "column {column} is numbered by a sequence on the source but by none on the target: new rows would get no id"
                )),
                column,
                sequence,
                value: None,
                largest: None,
            });
            continue;
        };
        let ctx = |e| StoreError::query(format!("reading sequence {seq}"), e);
        let state = target
            .query_one(&format!("SELECT last_value, is_called FROM {seq}"), &[])
            .await
            .map_err(ctx)?;
        let (last, called): (i64, bool) = (state.get(0), state.get(1));
        let largest: Option<i64> = target
            .query_one(
                &format!(
                    "SELECT max({})::bigint FROM {}",
                    quote_ident(&column),
                    target_layout.qualified()
                ),
                &[],
            )
            .await
            .map_err(|e| StoreError::query(format!("reading the largest {column}"), e))?
            .get(0);
        // The next value is last + 1 once the sequence was used, else last itself.
        let next = if called { last.saturating_add(1) } else { last };
        let problem = largest.filter(|m| next <= *m).map(|m| {
            format!(
                "sequence {seq} of column {column} would give {next} next, but the target already holds {m}: the application's next insert fails with a duplicate key (setval it past {m})"
            )
        });
        checks.push(SequenceCheck {
            column,
            sequence,
            value: Some(last),
            largest,
            problem,
        });
    }
    Ok(checks)
}
