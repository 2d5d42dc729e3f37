//! The Parquet files: a table's rows with one typed column per table column (see
//! [`crate::columns`]), written batch by batch and row group by row group, read back batch by
//! batch for the import's COPY. Files of version 1 exports (Bedrock Chat's five columns as
//! `id, botid, content, source` UTF-8 and `embedding` a fixed-size list of float32) are read
//! batch by batch by [`RowFileReader`].

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::Float32Type;
use arrow_array::{Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use crate::columns::{from_array, to_array, ColumnKind, Value};

/// Rows per record batch (and Parquet row group granularity).
pub const BATCH_ROWS: usize = 1024;

/// One row of a version 1 export; every column may be NULL.
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

/// The Arrow schema of a version 1 export's files, for vectors of `dimension`.
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

/// Bytes of encoded row data an open row group may hold before it is written out: what a
/// writer holds in memory at most, whatever the size of the file.
const ROW_GROUP_BYTES: usize = 32 << 20;
/// Bytes of values a pending batch may hold before it becomes a record batch.
const BATCH_BYTES: usize = 8 << 20;

/// One column of a table file: its name, how it is carried, and its PostgreSQL type.
#[derive(Debug, Clone)]
pub struct FileColumn {
    /// Column name.
    pub name: String,
    /// How its values are carried.
    pub kind: ColumnKind,
    /// Its type as `format_type` prints it.
    pub type_sql: String,
}

/// The Arrow schema of a table file.
pub fn table_schema(columns: &[FileColumn]) -> SchemaRef {
    Arc::new(Schema::new(
        columns
            .iter()
            .map(|c| c.kind.field(&c.name, &c.type_sql))
            .collect::<Vec<_>>(),
    ))
}

/// Writes one file of a table's rows, batch by batch and row group by row group, so memory
/// stays bounded whatever the file's size.
pub struct TableFileWriter {
    writer: ArrowWriter<File>,
    schema: SchemaRef,
    columns: Vec<FileColumn>,
    pending: Vec<Vec<Value>>,
    pending_bytes: usize,
    rows: i64,
    bytes: u64,
}

impl TableFileWriter {
    /// Creates the file.
    pub fn create(path: &Path, columns: &[FileColumn]) -> Result<Self, FileError> {
        let schema = table_schema(columns);
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_max_row_group_row_count(Some(64 * BATCH_ROWS))
            .build();
        let file = File::create(path)?;
        let writer = ArrowWriter::try_new(file, schema.clone(), Some(props))?;
        Ok(Self {
            writer,
            schema,
            columns: columns.to_vec(),
            pending: Vec::with_capacity(BATCH_ROWS),
            pending_bytes: 0,
            rows: 0,
            bytes: 0,
        })
    }

    /// Adds a row (one value per column; written once a batch is full).
    pub fn push(&mut self, row: Vec<Value>) -> Result<(), FileError> {
        let size: usize = row.iter().map(Value::size).sum();
        self.pending_bytes += size;
        self.bytes += size as u64;
        self.pending.push(row);
        self.rows += 1;
        if self.pending.len() >= BATCH_ROWS || self.pending_bytes >= BATCH_BYTES {
            self.flush()?;
        }
        Ok(())
    }

    /// Bytes of values pushed so far (before encoding and compression).
    pub fn value_bytes(&self) -> u64 {
        self.bytes
    }

    fn flush(&mut self) -> Result<(), FileError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let rows = std::mem::take(&mut self.pending);
        self.pending_bytes = 0;
        let mut arrays = Vec::with_capacity(self.columns.len());
        for (i, c) in self.columns.iter().enumerate() {
            let values: Vec<Value> = rows
                .iter()
                .map(|r| r.get(i).cloned().unwrap_or(Value::Null))
                .collect();
            arrays.push(
                to_array(&c.kind, &values)
                    .map_err(|e| FileError::Schema(format!("column {}: {e}", c.name)))?,
            );
        }
        let batch = RecordBatch::try_new(self.schema.clone(), arrays)?;
        self.writer.write(&batch)?;
        if self.writer.in_progress_size() >= ROW_GROUP_BYTES {
            self.writer.flush()?;
        }
        Ok(())
    }

    /// Writes what is pending and the footer; returns the row count.
    pub fn finish(mut self) -> Result<i64, FileError> {
        self.flush()?;
        self.writer.close()?;
        Ok(self.rows)
    }
}

/// Reads a table file batch by batch: each batch as one value list per column of `columns`
/// (found by name, so a file rewritten by another tool with its columns in another order still
/// reads).
pub struct TableFileReader {
    reader: parquet::arrow::arrow_reader::ParquetRecordBatchReader,
    columns: Vec<FileColumn>,
}

impl TableFileReader {
    /// Opens the file, checking that it has every column.
    pub fn open(path: &Path, columns: &[FileColumn]) -> Result<Self, FileError> {
        let file = File::open(path)?;
        let builder = ParquetRecordBatchReaderBuilder::try_new(file)?.with_batch_size(BATCH_ROWS);
        let have = builder.schema().clone();
        let missing: Vec<&str> = columns
            .iter()
            .filter(|c| have.field_with_name(&c.name).is_err())
            .map(|c| c.name.as_str())
            .collect();
        if !missing.is_empty() {
            return Err(FileError::Schema(format!(
                "columns {} are missing",
                missing.join(", ")
            )));
        }
        Ok(Self {
            reader: builder.build()?,
            columns: columns.to_vec(),
        })
    }

    /// The next batch as columns of values, `None` at the end.
    pub fn next_batch(&mut self) -> Result<Option<Vec<Vec<Value>>>, FileError> {
        let Some(batch) = self.reader.next() else {
            return Ok(None);
        };
        let batch = batch?;
        let mut out = Vec::with_capacity(self.columns.len());
        for c in &self.columns {
            let array = batch
                .column_by_name(&c.name)
                .ok_or_else(|| FileError::Schema(format!("column {} is missing", c.name)))?;
            out.push(
                from_array(&c.kind, array.as_ref())
                    .map_err(|e| FileError::Schema(format!("column {}: {e}", c.name)))?,
            );
        }
        Ok(Some(out))
    }
}

/// Reads a version 1 file batch by batch (at most [`BATCH_ROWS`] rows in memory), its schema
/// checked against `dimension` when it is opened.
pub struct RowFileReader {
    reader: parquet::arrow::arrow_reader::ParquetRecordBatchReader,
}

impl RowFileReader {
    /// Opens the file and checks its columns.
    pub fn open(path: &Path, dimension: usize) -> Result<Self, FileError> {
        let file = File::open(path)?;
        let builder = ParquetRecordBatchReaderBuilder::try_new(file)?.with_batch_size(BATCH_ROWS);
        let have = builder.schema().clone();
        let want = schema(dimension);
        let names: Vec<&str> = have.fields().iter().map(|f| f.name().as_str()).collect();
        let texts = (0..4).all(|i| have.field(i).data_type() == &DataType::Utf8);
        if names != ["id", "botid", "content", "source", "embedding"]
            || !texts
            || have.field(4).data_type() != want.field(4).data_type()
        {
            return Err(FileError::Schema(format!(
                "unexpected columns {:?} (expected id, botid, content, source as Utf8, embedding as {:?})",
                have.fields()
                    .iter()
                    .map(|f| format!("{} {}", f.name(), f.data_type()))
                    .collect::<Vec<_>>(),
                want.field(4).data_type()
            )));
        }
        Ok(Self {
            reader: builder.build()?,
        })
    }

    /// The next batch of rows, `None` at the end.
    pub fn next_batch(&mut self) -> Result<Option<Vec<Row>>, FileError> {
        let Some(batch) = self.reader.next() else {
            return Ok(None);
        };
        let batch = batch?;
        let col = |i: usize| {
            batch
                .column(i)
                .as_string_opt::<i32>()
                .ok_or_else(|| FileError::Schema(format!("column {i} is not UTF-8")))
        };
        let (ids, bots, contents, sources) = (col(0)?, col(1)?, col(2)?, col(3)?);
        let vectors = batch.column(4).as_fixed_size_list();
        let get =
            |a: &arrow_array::StringArray, i: usize| (!a.is_null(i)).then(|| a.value(i).to_owned());
        let mut out = Vec::with_capacity(batch.num_rows());
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
        Ok(Some(out))
    }
}
