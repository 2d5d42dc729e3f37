//! `ragshift export`: the store's tables (the chunk table and the tables it refers to by
//! foreign key) as typed Parquet files, from one consistent `REPEATABLE READ READ ONLY`
//! transaction, with a manifest written last (an export without a manifest is incomplete by
//! construction). The chunk table gets one file per partition key value (bot, collection); a
//! table without one is cut into files of about `--max-file-bytes` by primary key ranges.

use std::path::{Path, PathBuf};
use std::time::Instant;

use futures_util::StreamExt;
use serde::Serialize;
use tokio_postgres::binary_copy::BinaryCopyOutStream;
use tokio_postgres::types::Type;
use tokio_postgres::Client;

use ragshift_store::catalog::{read_table, sequence_states, TableDef};
use ragshift_store::checksum::{hash_columns, row_hash_sql};
use ragshift_store::ident::quote_ident;
use ragshift_store::{connect, schema, ConnectSpec, Layout, StoreError};

use crate::columns::{decode, ColumnKind, Raw, Value};
use crate::hash::sha256_file;
use crate::location::{upload, Location};
use crate::manifest::{
    file_name, part_file_name, FileEntry, KeyRange, LayoutColumns, Manifest, TableEntry, FORMAT,
    MANIFEST, VERSION,
};
use crate::parquet_file::{FileColumn, TableFileWriter};
use crate::ExportError;

/// What an export wrote.
#[derive(Debug, Clone, Serialize)]
pub struct ExportReport {
    /// Where.
    pub location: String,
    /// The manifest written.
    pub manifest: Manifest,
    /// Bytes of Parquet written.
    pub bytes: u64,
    /// Seconds it took.
    pub seconds: f64,
}

/// Exports the store of `layout`'s table (or some bots of it, with every referenced table
/// whole) from `source` to `to`; files of a table without a partition key hold about
/// `file_bytes` of values each.
pub async fn export(
    source: &ConnectSpec,
    layout: &Layout,
    to: &Location,
    s3: Option<&aws_sdk_s3::Client>,
    model: Option<String>,
    bots: Option<&[String]>,
    file_bytes: u64,
) -> Result<ExportReport, ExportError> {
    let started = Instant::now();
    let server = source.label().to_owned();
    let db = ExportError::source(&server);
    let q = |what: String| move |e| db(StoreError::query(what, e));
    if let (Location::S3 { bucket, .. }, Some(s3)) = (to, s3) {
        s3.head_bucket().bucket(bucket).send().await.map_err(|e| {
            let a = ragshift_aws::classify(format!("reaching bucket {bucket}"), &e);
            crate::location::TransferError::aws("reaching", to.display(), a)
        })?;
    }
    let staging: PathBuf = match to {
        Location::Dir(dir) => {
            if dir.join(MANIFEST).exists() {
                return Err(ExportError::Refused(format!(
                    "{} already holds an export ({MANIFEST}); export into another directory",
                    dir.display()
                )));
            }
            dir.clone()
        }
        Location::S3 { .. } => std::env::temp_dir().join(format!(
            "ragshift-export-{}-{}",
            std::process::id(),
            started.elapsed().as_nanos()
        )),
    };
    std::fs::create_dir_all(staging.join("bots")).map_err(|e| ExportError::Io {
        path: staging.join("bots").display().to_string(),
        error: e,
    })?;
    // Where the files go must take them before the source is read.
    let probe = staging.join("bots").join(".ragshift-write-test");
    std::fs::write(&probe, b"").map_err(|e| ExportError::Io {
        path: staging.join("bots").display().to_string(),
        error: e,
    })?;
    let _ = std::fs::remove_file(&probe);

    let client = connect(source, "ragshift export").await.map_err(db)?;
    client
        .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .await
        .map_err(q("opening a read-only snapshot".into()))?;
    let chunk = read_table(&client, layout)
        .await
        .map_err(db)?
        .ok_or_else(|| {
            ExportError::Refused(format!(
                "table {} not found on {server}: check [source] schema and table",
                layout.display_name()
            ))
        })?;
    // The store: the tables the chunk table refers to by foreign key first, then itself.
    let mut plans = Vec::new();
    for r in schema::referenced_tables(&client, layout)
        .await
        .map_err(db)?
    {
        let (parent, _) = schema::counterpart(layout, layout, &r);
        let parent = Layout {
            bot: String::new(),
            ..parent
        };
        let Some(def) = read_table(&client, &parent).await.map_err(db)? else {
            continue;
        };
        plans.push(plan_table(&client, parent, def, None).await.map_err(db)?);
    }
    let key = (!layout.bot.is_empty()).then(|| layout.bot.clone());
    plans.push(
        plan_table(&client, layout.clone(), chunk.clone(), key)
            .await
            .map_err(db)?,
    );
    let dimension = chunk
        .columns
        .iter()
        .find(|c| c.name == layout.embedding)
        .and_then(|c| match ColumnKind::of(&c.type_sql) {
            ColumnKind::Vector(Some(n)) | ColumnKind::Halfvec(Some(n)) => Some(n as usize),
            _ => None,
        })
        .unwrap_or(0);

    let mut total_bytes = 0u64;
    // From here on files are written: an error leaves an incomplete export (no manifest).
    let written = async {
        let mut files: Vec<FileEntry> = Vec::new();
        let mut tables = Vec::new();
        for plan in plans {
            let is_chunk = plan.layout == *layout;
            let out = Output {
                staging: &staging,
                s3,
                to,
                file_bytes: file_bytes.max(1),
            };
            let filter = if is_chunk { bots } else { None };
            let written =
                export_table(&client, &plan, filter, &out)
                    .await
                    .map_err(|e| match e {
                        TableFailure::Db(e) => db(e),
                        TableFailure::Other(e) => e,
                    })?;
            total_bytes += written.iter().map(|f| f.bytes).sum::<u64>();
            tables.push(TableEntry {
                name: plan.layout.display_name(),
                schema: plan.layout.schema.clone(),
                table: plan.layout.table.clone(),
                definition: plan.def,
                partition_key: plan.partition_key,
                split_key: plan.split_key,
                sequences: plan.sequences,
                rows: written.iter().map(|f| f.rows).sum(),
            });
            files.extend(written);
        }
        let manifest = Manifest {
            format: FORMAT.to_owned(),
            version: VERSION,
            created_at: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or_default(),
            source: server.clone(),
            table: layout.display_name(),
            columns: chunk.columns.iter().map(|c| c.name.clone()).collect(),
            shape: chunk.shape(),
            dimension,
            model,
            checksum_scheme: ragshift_store::checksum::SCHEME.to_owned(),
            rows: files.iter().map(|f| f.rows).sum(),
            files,
            tables,
            layout: Some(LayoutColumns {
                id: layout.id.clone(),
                bot: layout.bot.clone(),
                content: layout.content.clone(),
                source: layout.source.clone(),
                embedding: layout.embedding.clone(),
            }),
        };
        let text = serde_json::to_vec_pretty(&manifest).unwrap_or_default();
        let mpath = staging.join(MANIFEST);
        std::fs::write(&mpath, text).map_err(|e| ExportError::Io {
            path: mpath.display().to_string(),
            error: e,
        })?;
        ship(s3, to, MANIFEST, &mpath).await?;
        Ok::<Manifest, ExportError>(manifest)
    }
    .await;
    let manifest = written.map_err(|e| ExportError::Stopped {
        state: format!(
            "the export at {} is incomplete (no manifest was written) and can't be imported: export again into an empty place",
            to.display()
        ),
        error: Box::new(e),
    })?;
    let _ = client.batch_execute("COMMIT").await;
    if matches!(to, Location::S3 { .. }) {
        let _ = std::fs::remove_dir_all(&staging);
    }
    Ok(ExportReport {
        location: to.display(),
        manifest,
        bytes: total_bytes,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Files of a table without a partition key hold about this many bytes of values each
/// (`--max-file-bytes`).
pub const DEFAULT_FILE_BYTES: u64 = 64 << 20;

/// One table to export and how its files are cut.
struct TablePlan {
    layout: Layout,
    def: TableDef,
    partition_key: Option<String>,
    split_key: Option<String>,
    sequences: Vec<ragshift_store::catalog::SequenceState>,
}

/// Reads what the manifest records of a table besides its rows: how its files are cut and its
/// sequences.
async fn plan_table(
    client: &Client,
    layout: Layout,
    def: TableDef,
    partition_key: Option<String>,
) -> Result<TablePlan, StoreError> {
    let split_key = match &partition_key {
        Some(_) => None,
        None => client
            .query_opt(
                "SELECT a.attname::text
                   FROM pg_index i
                   JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
                  WHERE i.indrelid = to_regclass($1) AND i.indisprimary AND i.indnkeyatts = 1",
                &[&layout.qualified()],
            )
            .await
            .map_err(|e| {
                StoreError::query(
                    format!("reading the primary key of {}", layout.display_name()),
                    e,
                )
            })?
            .map(|r| r.get(0)),
    };
    let sequences = sequence_states(client, &def, &layout).await?;
    Ok(TablePlan {
        layout,
        def,
        partition_key,
        split_key,
        sequences,
    })
}

/// Where a table's files go.
struct Output<'a> {
    staging: &'a Path,
    s3: Option<&'a aws_sdk_s3::Client>,
    to: &'a Location,
    file_bytes: u64,
}

/// Why a table's export stopped.
enum TableFailure {
    /// Reading the source.
    Db(StoreError),
    /// Writing a file.
    Other(ExportError),
}

impl From<ExportError> for TableFailure {
    fn from(e: ExportError) -> Self {
        Self::Other(e)
    }
}

/// A file being written, with what the manifest will say of it.
struct OpenFile {
    name: String,
    writer: TableFileWriter,
    key: Option<String>,
    first: Option<String>,
    last: Option<String>,
    checksum: i128,
}

/// Streams one table (in the export's snapshot) into its files: one per partition key value,
/// else files of about `file_bytes` of values cut at primary key boundaries (or anywhere, for a
/// table without one). Each row's hash ([`row_hash_sql`]) comes with it, so each file's
/// checksum is the sum over exactly its rows.
async fn export_table(
    client: &Client,
    plan: &TablePlan,
    bots: Option<&[String]>,
    out: &Output<'_>,
) -> Result<Vec<FileEntry>, TableFailure> {
    let layout = &plan.layout;
    let name = layout.display_name();
    let q = |what: String| move |e| TableFailure::Db(StoreError::query(what, e));
    let columns: Vec<FileColumn> = crate::tables::file_columns(&plan.def);
    let mut exprs: Vec<String> = columns
        .iter()
        .map(|c| {
            let col = quote_ident(&c.name);
            if c.kind.is_text_form() {
                format!("{col}::text")
            } else {
                col
            }
        })
        .collect();
    let hashed = hash_columns(client, layout)
        .await
        .map_err(TableFailure::Db)?;
    exprs.push(row_hash_sql(&hashed));
    let key_col = plan.partition_key.as_ref().or(plan.split_key.as_ref());
    exprs.push(match key_col {
        Some(k) => format!("{}::text", quote_ident(k)),
        None => "NULL::text".to_owned(),
    });
    let filter = match (bots, &plan.partition_key) {
        (Some(b), Some(k)) => {
            let list: Vec<String> = b
                .iter()
                .map(|s| ragshift_store::ident::quote_literal(s.trim_end()))
                .collect();
            format!(
                "WHERE src.{}::text IN ({})",
                quote_ident(k),
                list.join(", ")
            )
        }
        _ => String::new(),
    };
    let order = match (&plan.partition_key, &plan.split_key) {
        (Some(k), _) => format!("ORDER BY src.{} NULLS FIRST", quote_ident(k)),
        (None, Some(k)) => format!("ORDER BY src.{}", quote_ident(k)),
        (None, None) => String::new(),
    };
    let select = format!(
        "SELECT {} FROM {} AS src {filter} {order}",
        exprs.join(", "),
        layout.qualified()
    );
    let types: Vec<Type> = client
        .prepare(&format!("{select} LIMIT 0"))
        .await
        .map_err(q(format!("reading the column types of {name}")))?
        .columns()
        .iter()
        .map(|c| c.type_().clone())
        .collect();
    let stream = client
        .copy_out(&format!("COPY ({select}) TO STDOUT (FORMAT binary)"))
        .await
        .map_err(q(format!("reading {name}")))?;
    let mut rows = std::pin::pin!(BinaryCopyOutStream::new(stream, &types));
    let n = columns.len();
    let mut files = Vec::new();
    let mut current: Option<OpenFile> = None;
    let mut parts = 0usize;
    while let Some(row) = rows.next().await {
        let row = row.map_err(q(format!("streaming {name}")))?;
        let key: Option<String> = row
            .try_get::<Option<Raw>>(n + 1)
            .map_err(q("decoding a key".into()))?
            .map(|Raw(b)| String::from_utf8_lossy(b).into_owned());
        let hash: i64 = match row
            .try_get::<Option<Raw>>(n)
            .map_err(q("decoding a row hash".into()))?
        {
            Some(Raw(b)) if b.len() == 8 => {
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                i64::from_be_bytes(a)
            }
            _ => 0,
        };
        let full = match (&current, &plan.partition_key) {
            (None, _) => true,
            (Some(f), Some(_)) => f.key != key,
            (Some(f), None) => f.writer.value_bytes() >= out.file_bytes,
        };
        if full {
            if let Some(f) = current.take() {
                files.push(finish_file(f, plan, out).await?);
            }
            let file_name = match &plan.partition_key {
                Some(_) => file_name(key.as_deref()),
                None => {
                    parts += 1;
                    part_file_name(&name, parts)
                }
            };
            let path = out.staging.join(&file_name);
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(|e| ExportError::Io {
                    path: dir.display().to_string(),
                    error: e,
                })?;
            }
            let writer =
                TableFileWriter::create(&path, &columns).map_err(|e| ExportError::File {
                    path: path.display().to_string(),
                    error: e,
                })?;
            current = Some(OpenFile {
                name: file_name,
                writer,
                key: key.clone(),
                first: key.clone(),
                last: None,
                checksum: 0,
            });
        }
        let mut values = Vec::with_capacity(n);
        for (i, c) in columns.iter().enumerate() {
            let raw: Option<Raw> = row
                .try_get(i)
                .map_err(q(format!("decoding column {} of {name}", c.name)))?;
            values.push(match raw {
                None => Value::Null,
                Some(Raw(b)) => decode(&c.kind, b).map_err(|e| {
                    ExportError::Refused(format!(
                        "column {} ({}) of {name}: {e}",
                        c.name, c.type_sql
                    ))
                })?,
            });
        }
        if let Some(f) = current.as_mut() {
            f.checksum += i128::from(hash);
            f.last = key;
            f.writer.push(values).map_err(|e| ExportError::File {
                path: f.name.clone(),
                error: e,
            })?;
        }
    }
    if let Some(f) = current.take() {
        files.push(finish_file(f, plan, out).await?);
    }
    Ok(files)
}

/// Closes a file, hashes it, ships it (S3) and says what the manifest records of it.
async fn finish_file(
    f: OpenFile,
    plan: &TablePlan,
    out: &Output<'_>,
) -> Result<FileEntry, ExportError> {
    let path = out.staging.join(&f.name);
    let rows = f.writer.finish().map_err(|e| ExportError::File {
        path: path.display().to_string(),
        error: e,
    })?;
    let (sha256, bytes) = sha256_file(&path).map_err(|e| ExportError::Io {
        path: path.display().to_string(),
        error: e,
    })?;
    ship(out.s3, out.to, &f.name, &path).await?;
    let range = match (&plan.split_key, f.first, f.last) {
        (Some(_), Some(first), Some(last)) => Some(KeyRange { first, last }),
        _ => None,
    };
    Ok(FileEntry {
        path: f.name,
        table: plan.layout.display_name(),
        bot_id: plan.partition_key.as_ref().and(f.key),
        range,
        rows,
        bytes,
        sha256,
        checksum: f.checksum.to_string(),
    })
}

/// Uploads a staged file when the export goes to S3 (and removes the local copy).
async fn ship(
    s3: Option<&aws_sdk_s3::Client>,
    to: &Location,
    name: &str,
    local: &Path,
) -> Result<(), ExportError> {
    if let (Location::S3 { .. }, Some(s3)) = (to, s3) {
        upload(s3, to, name, local).await?;
        let _ = std::fs::remove_file(local);
    }
    Ok(())
}
