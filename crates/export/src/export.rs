//! `ragshift export`: the chunk table as Parquet files, one per bot, from one consistent
//! `REPEATABLE READ READ ONLY` transaction, with a manifest written last (an export without a
//! manifest is incomplete by construction).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use futures_util::StreamExt;
use pgvector::Vector;
use serde::Serialize;
use tokio_postgres::binary_copy::BinaryCopyOutStream;
use tokio_postgres::types::Type;

use ragshift_store::checksum::{bot_checksums, NULL_KEY};
use ragshift_store::ident::quote_ident;
use ragshift_store::{connect, schema, ConnectSpec, Layout, StoreError};

use crate::hash::sha256_file;
use crate::location::{upload, Location};
use crate::manifest::{file_name, FileEntry, Manifest, FORMAT, MANIFEST, VERSION};
use crate::parquet_file::{BotFileWriter, Row};
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

/// Exports `layout`'s table (or some bots of it) from `source` to `to`.
pub async fn export(
    source: &ConnectSpec,
    layout: &Layout,
    to: &Location,
    s3: Option<&aws_sdk_s3::Client>,
    model: Option<String>,
    bots: Option<&[String]>,
) -> Result<ExportReport, ExportError> {
    let started = Instant::now();
    let server = source.label().to_owned();
    let db = |e: StoreError| ExportError::Source {
        server: server.clone(),
        error: e,
    };
    let q = |what: String| {
        let server = server.clone();
        move |e| ExportError::Source {
            server,
            error: StoreError::query(what, e),
        }
    };
    if let (Location::S3 { bucket, .. }, Some(s3)) = (to, s3) {
        s3.head_bucket().bucket(bucket).send().await.map_err(|e| {
            let a = ragshift_aws::classify(format!("reaching bucket {bucket}"), &e);
            crate::location::TransferError {
                what: "reaching",
                object: to.display(),
                message: a.message.clone(),
                kind: Some(a.kind),
            }
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
    let shape = schema::read_shape(&client, layout)
        .await
        .map_err(db)?
        .ok_or_else(|| {
            ExportError::Refused(format!(
                "table {} not found on {server}: check [source] schema and table",
                layout.display_name()
            ))
        })?;
    if layout.bot.is_empty() {
        return Err(ExportError::Refused(format!(
            "export writes one file per bot, and {} has no bot column ([source] bot_column is empty); move this store with `ragshift copy` or `ragshift replicate`",
            layout.display_name()
        )));
    }
    // The Parquet files carry the layout's five columns, the four keys and texts as text: a
    // table with more columns, or keys of other types, would lose data on the way. Say so
    // before anything is written rather than export part of the store.
    let mapped = layout.columns();
    let mut lost: Vec<String> = shape
        .columns
        .iter()
        .filter(|c| !mapped.contains(&c.name.as_str()))
        .map(|c| format!("{} {} (not carried)", c.name, c.type_name))
        .collect();
    lost.extend(
        shape
            .columns
            .iter()
            .filter(|c| c.name != layout.embedding && mapped.contains(&c.name.as_str()))
            .filter(|c| !schema::is_text_type(&c.type_name))
            .map(|c| format!("{} {} (carried as text only)", c.name, c.type_name)),
    );
    if !lost.is_empty() {
        return Err(ExportError::Refused(format!(
            "export carries the columns {} of {} as text and a vector(n); this table also has {}: exporting it would lose data. Move this store with `ragshift copy` or `ragshift replicate` (whole-store export is not built yet)",
            mapped.join(", "),
            layout.display_name(),
            lost.join(", ")
        )));
    }
    let dimension = shape.dimension_of(&layout.embedding).ok_or_else(|| {
        ExportError::Refused(format!(
            "column {} of {} is not a vector(n): set [source] embedding_column",
            layout.embedding,
            layout.display_name()
        ))
    })?;
    let sums: HashMap<String, (i64, String)> = bot_checksums(&client, layout, bots)
        .await
        .map_err(db)?
        .into_iter()
        .map(|b| (b.bot_id, (b.rows, b.checksum)))
        .collect();
    let vector_type: Type = client
        .prepare(&format!(
            "SELECT {} FROM {} LIMIT 0",
            quote_ident(&layout.embedding),
            layout.qualified()
        ))
        .await
        .map_err(q("reading the vector type".into()))?
        .columns()[0]
        .type_()
        .clone();
    let bot = quote_ident(&layout.bot);
    let filter = match bots {
        Some(b) => {
            let list: Vec<String> = b
                .iter()
                .map(|s| ragshift_store::ident::quote_literal(s.trim_end()))
                .collect();
            format!("WHERE {bot}::text IN ({})", list.join(", "))
        }
        None => String::new(),
    };
    let sql = format!(
        "COPY (SELECT {id}::text, {bot}::text, {content}::text, {src}::text, {emb}
                 FROM {table} {filter} ORDER BY {bot} NULLS FIRST) TO STDOUT (FORMAT binary)",
        id = quote_ident(&layout.id),
        content = quote_ident(&layout.content),
        src = quote_ident(&layout.source),
        emb = quote_ident(&layout.embedding),
        table = layout.qualified(),
    );
    let stream = client
        .copy_out(&sql)
        .await
        .map_err(q(format!("reading {}", layout.display_name())))?;
    let types = [Type::TEXT, Type::TEXT, Type::TEXT, Type::TEXT, vector_type];
    let mut rows = std::pin::pin!(BinaryCopyOutStream::new(stream, &types));

    let mut files: Vec<FileEntry> = Vec::new();
    let mut current: Option<(Option<String>, BotFileWriter)> = None;
    let mut total_bytes = 0u64;
    // From here on files are written: an error leaves an incomplete export (no manifest).
    let written = async {
        let finish_file =
            |bot: Option<String>, w: BotFileWriter| -> Result<(FileEntry, PathBuf), ExportError> {
                let name = file_name(bot.as_deref());
                let path = staging.join(&name);
                let n = w.finish().map_err(|e| ExportError::File {
                    path: path.display().to_string(),
                    error: e,
                })?;
                let (sha256, bytes) = sha256_file(&path).map_err(|e| ExportError::Io {
                    path: path.display().to_string(),
                    error: e,
                })?;
                let key = bot.clone().unwrap_or_else(|| NULL_KEY.to_owned());
                let checksum = sums.get(&key).map(|s| s.1.clone()).unwrap_or_default();
                Ok((
                    FileEntry {
                        path: name,
                        bot_id: bot,
                        rows: n,
                        bytes,
                        sha256,
                        checksum,
                    },
                    path,
                ))
            };
        while let Some(row) = rows.next().await {
            let row = row.map_err(q(format!("streaming {}", layout.display_name())))?;
            let bot_id: Option<String> = row.try_get(1).map_err(q("decoding a bot id".into()))?;
            let same = matches!(&current, Some((b, _)) if *b == bot_id);
            if !same {
                if let Some((b, w)) = current.take() {
                    let (entry, path) = finish_file(b, w)?;
                    total_bytes += entry.bytes;
                    ship(s3, to, &entry.path, &path).await?;
                    files.push(entry);
                }
                let name = file_name(bot_id.as_deref());
                let path = staging.join(&name);
                let w = BotFileWriter::create(&path, dimension).map_err(|e| ExportError::File {
                    path: path.display().to_string(),
                    error: e,
                })?;
                current = Some((bot_id.clone(), w));
            }
            let embedding: Option<Vector> =
                row.try_get(4).map_err(q("decoding a vector".into()))?;
            let r = Row {
                id: row.try_get(0).map_err(q("decoding an id".into()))?,
                bot_id,
                content: row.try_get(2).map_err(q("decoding content".into()))?,
                source: row.try_get(3).map_err(q("decoding a source".into()))?,
                embedding: embedding.map(|v| v.to_vec()),
            };
            if let Some((_, w)) = current.as_mut() {
                w.push(r).map_err(|e| ExportError::File {
                    path: "a Parquet file".into(),
                    error: e,
                })?;
            }
        }
        if let Some((b, w)) = current.take() {
            let (entry, path) = finish_file(b, w)?;
            total_bytes += entry.bytes;
            ship(s3, to, &entry.path, &path).await?;
            files.push(entry);
        }
        for f in &files {
            let key = f.bot_id.clone().unwrap_or_else(|| NULL_KEY.to_owned());
            if sums.get(&key).map(|s| s.0) != Some(f.rows) {
                return Err(ExportError::Refused(format!(
                    "{} holds {} rows but the snapshot counted {:?} for that bot; export again",
                    f.path,
                    f.rows,
                    sums.get(&key).map(|s| s.0)
                )));
            }
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
            columns: layout.columns().iter().map(|c| (*c).to_owned()).collect(),
            shape: shape.to_string(),
            dimension,
            model,
            checksum_scheme: ragshift_store::checksum::SCHEME.to_owned(),
            rows: files.iter().map(|f| f.rows).sum(),
            files,
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
