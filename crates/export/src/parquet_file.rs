//! The Parquet files: one bot's rows with the Arrow schema `id, botid, content, source`
//! (UTF-8) and `embedding` (fixed-size list of float32), readable by pyarrow and DuckDB as they
//! are. Written in batches; read back into plain rows for the import's binary COPY.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use arrow_array::builder::{FixedSizeListBuilder, Float32Builder, StringBuilder};
use arrow_array::cast::AsArray;
use arrow_array::types::Float32Type;
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

/// Rows per record batch (and Parquet row group granularity).
pub const BATCH_ROWS: usize = 1024;

/// One row as exported; every column may be NULL.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Chunk id.
    pub id: Option<String>,
    /// Bot id.
    pub bot_id: Option<String>,
    /// Chunk text.
    pub content: Option<String>,
    /// Chunk source.
    pub source: Option<String>,
    /// The vector.
    pub embedding: Option<Vec<f32>>,
}

/// The Arrow schema for vectors of `dimension`.
pub fn schema(dimension: usize) -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, true),
        Field::new("botid", DataType::Utf8, true),
        Field::new("content", DataType::Utf8, true),
        Field::new("source", DataType::Utf8, true),
        Field::new(
            "embedding",
            DataType::FixedSizeList(
                Arc::new(Field::new("item", DataType::Float32, true)),
                dimension as i32,
            ),
            true,
        ),
    ]))
}

/// Errors reading or writing a Parquet file.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The file system.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// Parquet encoding or decoding.
    #[error("{0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    /// Arrow arrays.
    #[error("{0}")]
    Arrow(#[from] arrow_schema::ArrowError),
    /// The file doesn't have the expected columns or types.
    #[error("{0}")]
    Schema(String),
}

/// Writes one bot's file batch by batch.
pub struct BotFileWriter {
    writer: ArrowWriter<File>,
    schema: SchemaRef,
    dimension: usize,
    pending: Vec<Row>,
    rows: i64,
}

impl BotFileWriter {
    /// Creates the file.
    pub fn create(path: &Path, dimension: usize) -> Result<Self, FileError> {
        let schema = schema(dimension);
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_max_row_group_row_count(Some(64 * BATCH_ROWS))
            .build();
        let file = File::create(path)?;
        let writer = ArrowWriter::try_new(file, schema.clone(), Some(props))?;
        Ok(Self {
            writer,
            schema,
            dimension,
            pending: Vec::with_capacity(BATCH_ROWS),
            rows: 0,
        })
    }

    /// Adds a row (written once a batch is full).
    pub fn push(&mut self, row: Row) -> Result<(), FileError> {
        if let Some(v) = &row.embedding {
            if v.len() != self.dimension {
                return Err(FileError::Schema(format!(
                    "row {} has {} dimensions, the export has {}",
                    row.id.as_deref().unwrap_or("?"),
                    v.len(),
                    self.dimension
                )));
            }
        }
        self.pending.push(row);
        self.rows += 1;
        if self.pending.len() >= BATCH_ROWS {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), FileError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let rows = std::mem::take(&mut self.pending);
        let text = |f: fn(&Row) -> Option<&str>| -> ArrayRef {
            let mut b = StringBuilder::new();
            for r in &rows {
                b.append_option(f(r));
            }
            Arc::new(b.finish())
        };
        let mut vectors = FixedSizeListBuilder::with_capacity(
            Float32Builder::with_capacity(rows.len() * self.dimension),
            self.dimension as i32,
            rows.len(),
        );
        for r in &rows {
            match &r.embedding {
                Some(v) => {
                    vectors.values().append_slice(v);
                    vectors.append(true);
                }
                None => {
                    for _ in 0..self.dimension {
                        vectors.values().append_null();
                    }
                    vectors.append(false);
                }
            }
        }
        let batch = RecordBatch::try_new(
            self.schema.clone(),
            vec![
                text(|r| r.id.as_deref()),
                text(|r| r.bot_id.as_deref()),
                text(|r| r.content.as_deref()),
                text(|r| r.source.as_deref()),
                Arc::new(vectors.finish()),
            ],
        )?;
        self.writer.write(&batch)?;
        Ok(())
    }

    /// Writes what is pending and the footer; returns the row count.
    pub fn finish(mut self) -> Result<i64, FileError> {
        self.flush()?;
        self.writer.close()?;
        Ok(self.rows)
    }
}

/// Reads a whole file back into rows, checking its schema against `dimension`.
pub fn read_rows(path: &Path, dimension: usize) -> Result<Vec<Row>, FileError> {
    let file = File::open(path)?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)?
        .with_batch_size(BATCH_ROWS)
        .build()?;
    let want = schema(dimension);
    let mut out = Vec::new();
    for batch in reader {
        let batch = batch?;
        let have = batch.schema();
        let names: Vec<&str> = have.fields().iter().map(|f| f.name().as_str()).collect();
        if names != ["id", "botid", "content", "source", "embedding"]
            || have.field(4).data_type() != want.field(4).data_type()
        {
            return Err(FileError::Schema(format!(
                "unexpected columns {:?} (expected id, botid, content, source, embedding as {:?})",
                have.fields()
                    .iter()
                    .map(|f| format!("{} {}", f.name(), f.data_type()))
                    .collect::<Vec<_>>(),
                want.field(4).data_type()
            )));
        }
        let col = |i: usize| {
            batch
                .column(i)
                .as_string_opt::<i32>()
                .ok_or_else(|| FileError::Schema(format!("column {} is not UTF-8", names[i])))
        };
        let (ids, bots, contents, sources) = (col(0)?, col(1)?, col(2)?, col(3)?);
        let vectors = batch.column(4).as_fixed_size_list();
        let get =
            |a: &arrow_array::StringArray, i: usize| (!a.is_null(i)).then(|| a.value(i).to_owned());
        for i in 0..batch.num_rows() {
            let embedding = if vectors.is_null(i) {
                None
            } else {
                let v = vectors.value(i);
                let v = v.as_primitive::<Float32Type>();
                Some(v.values().to_vec())
            };
            out.push(Row {
                id: get(ids, i),
                bot_id: get(bots, i),
                content: get(contents, i),
                source: get(sources, i),
                embedding,
            });
        }
    }
    Ok(out)
}
