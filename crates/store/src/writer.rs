//! Replacing one bot's rows, as the platform's worker does, but with binary COPY instead of row
//! by row INSERT: delete the bot's rows and load the new ones in ONE transaction, so readers see
//! either the old rows or the complete new ones, never a mix. Where a bot's rows are and what a
//! row looks like come from the layout ([`BotRows`]): Bedrock Chat's bot column, LangChain's
//! collection or JSON metadata, LlamaIndex's nodes.

use std::pin::Pin;

use ragshift_model::StoredRow;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, Transaction};

use crate::bot_rows::{BotRows, UuidBytes};
use crate::{StoreError, StoreErrorKind};

/// An open replacement of one bot's rows. Rows are streamed in batches with [`write`]; nothing
/// is visible to others until [`finish`] returns the transaction and the caller commits it.
/// Dropping it (or the transaction) without committing rolls everything back.
///
/// [`write`]: BotReplacement::write
/// [`finish`]: BotReplacement::finish
pub struct BotReplacement<'c> {
    tx: Transaction<'c>,
    writer: Pin<Box<BinaryCopyInWriter>>,
    rows: BotRows,
    /// The bot's collection (LangChain v1).
    collection: Option<UuidBytes>,
    bot_id: String,
    dimension: Option<usize>,
    written: u64,
    deleted: u64,
}

impl<'c> BotReplacement<'c> {
    /// Starts the transaction, deletes the bot's rows (LangChain v1: gets or creates its
    /// collection) and opens the COPY.
    pub async fn begin(
        client: &'c mut Client,
        rows: &BotRows,
        bot_id: &str,
    ) -> Result<BotReplacement<'c>, StoreError> {
        let layout = &rows.layout;
        let ctx = |what: &str| format!("{what} for bot {bot_id} in {}", layout.display_name());
        let tx = client
            .transaction()
            .await
            .map_err(|e| StoreError::query(ctx("starting the transaction"), e))?;
        // The column types (including pgvector's, whose OID varies per database) come from the
        // table itself.
        let probe = tx
            .prepare(&format!(
                "SELECT {} FROM {} LIMIT 0",
                rows.write_column_list(),
                layout.qualified()
            ))
            .await
            .map_err(|e| StoreError::query(ctx("reading column types"), e))?;
        let types: Vec<Type> = probe.columns().iter().map(|c| c.type_().clone()).collect();
        let dim_row = tx
            .query_one(
                "SELECT NULLIF(a.atttypmod, -1)
                   FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
                   JOIN pg_namespace n ON n.oid = c.relnamespace
                  WHERE n.nspname = $1 AND c.relname = $2 AND a.attname = $3",
                &[&layout.schema, &layout.table, &layout.embedding],
            )
            .await
            .map_err(|e| StoreError::query(ctx("reading the vector dimension"), e))?;
        let dimension = dim_row.get::<_, Option<i32>>(0).map(|d| d as usize);
        let collection = match rows.shape {
            crate::RowShape::LangchainV1 => Some(rows.collection_of(&tx, bot_id).await?),
            _ => None,
        };
        let deleted = tx
            .execute(
                &format!(
                    "DELETE FROM {} WHERE {}",
                    layout.qualified(),
                    rows.bot_filter(1)
                ),
                &[&bot_id],
            )
            .await
            .map_err(|e| StoreError::query(ctx("deleting old rows"), e))?;
        let sink = tx
            .copy_in(&format!(
                "COPY {} ({}) FROM STDIN (FORMAT binary)",
                layout.qualified(),
                rows.write_column_list()
            ))
            .await
            .map_err(|e| StoreError::query(ctx("starting COPY"), e))?;
        let writer = Box::pin(BinaryCopyInWriter::new(sink, &types));
        Ok(BotReplacement {
            tx,
            writer,
            rows: rows.clone(),
            collection,
            bot_id: bot_id.to_owned(),
            dimension,
            written: 0,
            deleted,
        })
    }

    /// Streams a batch of rows into the COPY. A row of the wrong dimension or with a malformed id
    /// is refused before anything is sent; a row the server rejects fails the whole replacement.
    pub async fn write(&mut self, rows: Vec<StoredRow>) -> Result<(), StoreError> {
        for row in rows {
            if row.bot_id != self.bot_id {
                return Err(StoreError::new(
                    StoreErrorKind::InvalidData,
                    format!(
                        "row {} belongs to bot {}, not {}",
                        row.id, row.bot_id, self.bot_id
                    ),
                ));
            }
            if let Some(d) = self.dimension {
                if row.embedding.len() != d {
                    return Err(StoreError::new(
                        StoreErrorKind::DimensionMismatch,
                        format!(
                            "row {} of bot {} has {} dimensions, the table stores {d}",
                            row.id,
                            self.bot_id,
                            row.embedding.len()
                        ),
                    ));
                }
            }
            let values = self.rows.row_values(row, self.collection)?;
            let values: Vec<&(dyn ToSql + Sync)> = values
                .iter()
                .map(|v| v.as_ref() as &(dyn ToSql + Sync))
                .collect();
            self.writer.as_mut().write(&values).await.map_err(|e| {
                StoreError::query(format!("writing rows of bot {}", self.bot_id), e)
            })?;
            self.written += 1;
        }
        Ok(())
    }

    /// Ends the COPY and hands back the still-open transaction (so the caller can record the
    /// result in the journal atomically) with the number of rows written and deleted.
    pub async fn finish(mut self) -> Result<(Transaction<'c>, ReplaceCounts), StoreError> {
        let copied =
            self.writer.as_mut().finish().await.map_err(|e| {
                StoreError::query(format!("finishing COPY of bot {}", self.bot_id), e)
            })?;
        if copied != self.written {
            return Err(StoreError::new(
                StoreErrorKind::Query,
                format!(
                    "COPY of bot {} reported {copied} rows, {} were sent",
                    self.bot_id, self.written
                ),
            ));
        }
        Ok((
            self.tx,
            ReplaceCounts {
                written: copied,
                deleted: self.deleted,
            },
        ))
    }
}

/// Rows written and replaced by one bot replacement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplaceCounts {
    /// New rows.
    pub written: u64,
    /// Old rows deleted.
    pub deleted: u64,
}

/// Replaces all rows of `bot_id` with `rows` in one transaction and commits.
pub async fn replace_bot(
    client: &mut Client,
    layout: &BotRows,
    bot_id: &str,
    rows: Vec<StoredRow>,
) -> Result<ReplaceCounts, StoreError> {
    let mut rep = BotReplacement::begin(client, layout, bot_id).await?;
    rep.write(rows).await?;
    let (tx, counts) = rep.finish().await?;
    tx.commit()
        .await
        .map_err(|e| StoreError::query(format!("committing bot {bot_id}"), e))?;
    Ok(counts)
}
