//! Replacing one bot's rows, as the platform's worker does, but with binary COPY instead of row
//! by row INSERT: delete the bot's rows and load the new ones in ONE transaction, so readers see
//! either the old rows or the complete new ones, never a mix. Where a bot's rows are and what a
//! row looks like come from the layout ([`BotRows`]): Bedrock Chat's bot column, LangChain's
//! collection or JSON metadata, LlamaIndex's nodes. [`RowCopy`] is the COPY itself, which
//! import's writes share.

use std::pin::Pin;

use ragshift_model::StoredRow;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, GenericClient, Transaction};

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
    copy: RowCopy,
    rows: BotRows,
    /// The bot's collection (LangChain v1).
    collection: Option<UuidBytes>,
    bot_id: String,
    dimension: Option<usize>,
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
        let (into, columns) = (layout.qualified(), rows.write_column_list());
        let types = column_types(&tx, &into, &columns)
            .await
            .map_err(|e| StoreError::query(ctx("reading column types"), e))?;
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
        let copy = RowCopy::start(&tx, &into, &columns, &types)
            .await
            .map_err(|e| StoreError::query(ctx("starting COPY"), e))?;
        Ok(BotReplacement {
            tx,
            copy,
            rows: rows.clone(),
            collection,
            bot_id: bot_id.to_owned(),
            dimension,
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
            self.copy.write(&values).await.map_err(|e| {
                StoreError::query(format!("writing rows of bot {}", self.bot_id), e)
            })?;
        }
        Ok(())
    }

    /// Ends the COPY and hands back the still-open transaction (so the caller can record the
    /// result in the journal atomically) with the number of rows written and deleted.
    pub async fn finish(self) -> Result<(Transaction<'c>, ReplaceCounts), StoreError> {
        let copied = self.copy.finish().await.map_err(|e| match e {
            CopyFailure::Server(e) => {
                StoreError::query(format!("finishing COPY of bot {}", self.bot_id), e)
            }
            CopyFailure::Count { written, sent } => StoreError::new(
                StoreErrorKind::Query,
                format!(
                    "COPY of bot {} reported {written} rows, {sent} were sent",
                    self.bot_id
                ),
            ),
        })?;
        Ok((
            self.tx,
            ReplaceCounts {
                written: copied,
                deleted: self.deleted,
            },
        ))
    }
}

/// The types of `columns` (a column list) of `into` (a table), as a binary COPY must send
/// them: pgvector's types have a different OID in every database.
pub async fn column_types(
    client: &impl GenericClient,
    into: &str,
    columns: &str,
) -> Result<Vec<Type>, tokio_postgres::Error> {
    let probe = client
        .prepare(&format!("SELECT {columns} FROM {into} LIMIT 0"))
        .await?;
    Ok(probe.columns().iter().map(|c| c.type_().clone()).collect())
}

/// A binary COPY of rows into one table inside the caller's transaction, counting the rows it
/// sends: the one way rows are written (a bot's replacement here, import's files). Nothing is
/// kept until the transaction commits; [`RowCopy::finish`] checks that the server took every
/// row sent.
pub struct RowCopy {
    writer: Pin<Box<BinaryCopyInWriter>>,
    sent: u64,
}

/// Why ending a [`RowCopy`] failed.
#[derive(Debug)]
pub enum CopyFailure {
    /// The server refused the COPY (a row it rejects, a lost connection).
    Server(tokio_postgres::Error),
    /// The server took another number of rows than were sent.
    Count {
        /// Rows the server reports.
        written: u64,
        /// Rows sent.
        sent: u64,
    },
}

impl RowCopy {
    /// Opens `COPY into (columns) FROM STDIN` in binary form; `types` are the columns' types
    /// ([`column_types`]).
    pub async fn start(
        tx: &Transaction<'_>,
        into: &str,
        columns: &str,
        types: &[Type],
    ) -> Result<Self, tokio_postgres::Error> {
        let sink = tx
            .copy_in(&format!(
                "COPY {into} ({columns}) FROM STDIN (FORMAT binary)"
            ))
            .await?;
        Ok(Self {
            writer: Box::pin(BinaryCopyInWriter::new(sink, types)),
            sent: 0,
        })
    }

    /// Sends one row, a value per column.
    pub async fn write(
        &mut self,
        row: &[&(dyn ToSql + Sync)],
    ) -> Result<(), tokio_postgres::Error> {
        self.writer.as_mut().write(row).await?;
        self.sent += 1;
        Ok(())
    }

    /// Ends the COPY; the rows written, once the server counted every row sent.
    pub async fn finish(mut self) -> Result<u64, CopyFailure> {
        let written = self
            .writer
            .as_mut()
            .finish()
            .await
            .map_err(CopyFailure::Server)?;
        if written != self.sent {
            return Err(CopyFailure::Count {
                written,
                sent: self.sent,
            });
        }
        Ok(written)
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
