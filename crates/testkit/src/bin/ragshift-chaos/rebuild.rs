//! The rebuild strategy: `ragshift rebuild` of a file registry and a documents folder with the
//! local embedding model, into a target behind the fault proxy.
//!
//! The reference is one clean rebuild of the same registry and documents into its own database,
//! done once before the trials (through the healed proxy, which also measures how many bytes and
//! how much time a whole run takes, so that faults land inside a run). A faulted run is rerun
//! with the same command: rebuild resumes its own unfinished run on its own (same selection
//! and settings, within `--resume-window`), skipping the bots it already committed.
//!
//! Chunk ids are new ULIDs on every run, so a row's identity is everything but its id and its
//! vector: every other column (bot, source, content, and any other column of the layout),
//! compared as the server prints the row. Ids are only checked to be 26 characters and unique.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use ragshift_testkit::{FaultProxy, PgCluster, SeededRng};

use super::{command, text, Scale};

/// Bots in the registry; each has one to three documents.
const BOTS: u32 = 30;

/// Largest difference allowed between a vector component on the target and in the reference.
/// The local model pads the texts of a batch to a common length, so the same text embedded in
/// another batch (a rerun embeds other bots at the same time, or takes the vector from the
/// target's embedding cache) can differ in the last bits of a float; vectors are unit length
/// (components around 0.05), so 1e-4 is far above that noise and far below a different text.
const VECTOR_TOLERANCE: f32 = 1e-4;

/// Every row of the chunk table: its id, every other column but the vector as the server
/// prints them (`jsonb` sorts keys, so equal rows print equally), and the vector.
const ROWS: &str =
    "SELECT t.id::text, (to_jsonb(t) - 'id' - 'embedding')::text, t.embedding::text FROM public.items t";

/// A chunk's identity (every column but id and vector) → the vectors of the rows with it.
type Chunks = HashMap<String, Vec<Vec<f32>>>;

/// The registry and documents of the trials, and the rows of a clean rebuild of them.
pub struct Rebuild {
    registry: PathBuf,
    documents: PathBuf,
    model: PathBuf,
    reference: Chunks,
    /// How big a whole run is, for the faults.
    pub scale: Scale,
}

impl Rebuild {
    /// Writes the registry and documents under `work` and rebuilds them once, without faults,
    /// into a database of `target` reached through `proxy`: the reference.
    pub fn prepare(
        ragshift: &Path,
        work: &Path,
        target: &PgCluster,
        proxy: &FaultProxy,
        rt: &tokio::runtime::Runtime,
    ) -> anyhow::Result<Self> {
        let dir = work.join("rebuild");
        let (registry, documents) = write_fixture(&dir)?;
        let mut r = Self {
            registry,
            documents,
            model: ragshift_testkit::model_dir(),
            reference: Chunks::new(),
            scale: Scale {
                bytes: 0..0,
                run: Duration::ZERO,
            },
        };
        let url = target.fresh_database("chaos_rebuild_reference");
        proxy.heal();
        let before = proxy.forwarded();
        let started = Instant::now();
        let args = r.args(&proxy.url_for(&url));
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = command(ragshift, work, &argv)
            .output()
            .context("running ragshift")?;
        if out.status.code() != Some(0) {
            bail!("the reference rebuild failed: {}", text(&out));
        }
        let bytes = proxy.forwarded() - before;
        r.scale = Scale {
            bytes: 1..bytes.max(2),
            run: started.elapsed(),
        };
        let (reference, bad_ids) = chunks(target, &url, rt)?;
        if bad_ids > 0 {
            bail!("the reference rebuild wrote {bad_ids} rows with a bad or repeated id");
        }
        r.reference = reference;
        let rows: usize = r.reference.values().map(Vec::len).sum();
        eprintln!(
            "chaos: rebuild reference: {BOTS} bots, {rows} chunks, {bytes} bytes through the proxy in {:.1?}",
            r.scale.run
        );
        Ok(r)
    }

    /// The command of every run of a trial: the same one each time, since rebuild resumes its
    /// own unfinished run.
    pub fn args(&self, via: &str) -> Vec<String> {
        [
            "rebuild",
            "--yes",
            "--json",
            "--concurrency",
            "4",
            "--registry-file",
            &self.registry.display().to_string(),
            "--documents-dir",
            &self.documents.display().to_string(),
            "--embedding-model-dir",
            &self.model.display().to_string(),
            "--target-url",
            via,
        ]
        .into_iter()
        .map(str::to_owned)
        .collect()
    }

    /// Rows of the reference missing or different on the target (database `url`), and rows
    /// on the target beyond the reference's (duplicates and extras).
    pub fn compare(
        &self,
        target: &PgCluster,
        url: &str,
        rt: &tokio::runtime::Runtime,
    ) -> anyhow::Result<(u64, u64)> {
        // A row with a bad or repeated id is left out of the matching: an extra.
        let (got, bad_ids) = chunks(target, url, rt)?;
        let (lost, extra) = diff(&self.reference, &got);
        Ok((lost, extra + bad_ids))
    }
}

/// Rows of `want` with no equal row in `got` (lost), and rows of `got` beyond `want`'s
/// (duplicates and extras). A row that differs only in its vector is counted lost, not extra.
fn diff(want: &Chunks, got: &Chunks) -> (u64, u64) {
    let (mut lost, mut extra) = (0u64, 0u64);
    for (key, want) in want {
        let have = got.get(key).map(Vec::as_slice).unwrap_or_default();
        let mut unmatched: Vec<&Vec<f32>> = have.iter().collect();
        for w in want {
            match unmatched.iter().position(|h| close(h, w)) {
                Some(i) => {
                    unmatched.swap_remove(i);
                }
                None => lost += 1,
            }
        }
        extra += have.len().saturating_sub(want.len()) as u64;
    }
    for (key, have) in got {
        if !want.contains_key(key) {
            extra += have.len() as u64;
        }
    }
    (lost, extra)
}

/// Whether two vectors are equal within [`VECTOR_TOLERANCE`].
fn close(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| (x - y).abs() <= VECTOR_TOLERANCE)
}

/// The rows of the chunk table of database `url` by identity (none when it has no table),
/// and how many rows have an id that is not a 26-character ULID or repeats another row's (ids
/// are made anew by each run, so they can't be compared with the reference's).
fn chunks(
    target: &PgCluster,
    url: &str,
    rt: &tokio::runtime::Runtime,
) -> anyhow::Result<(Chunks, u64)> {
    rt.block_on(async {
        let c = target.connect(url).await;
        let mut out = Chunks::new();
        let (mut ids, mut bad_ids) = (HashSet::new(), 0);
        if !has_table(&c).await? {
            return Ok((out, 0));
        }
        for row in c.query(ROWS, &[]).await? {
            let id: Option<String> = row.get(0);
            let key: String = row.get(1);
            let vector: Option<String> = row.get(2);
            let id_ok = id.is_some_and(|id| id.trim_end().chars().count() == 26 && ids.insert(id));
            if !id_ok {
                bad_ids += 1;
                continue;
            }
            let vector = parse_vector(vector.as_deref().unwrap_or(""))
                .with_context(|| format!("the vector of row {key}"))?;
            out.entry(key).or_default().push(vector);
        }
        Ok((out, bad_ids))
    })
}

async fn has_table(c: &tokio_postgres::Client) -> anyhow::Result<bool> {
    Ok(
        c.query_one("SELECT to_regclass('public.items') IS NOT NULL", &[])
            .await?
            .get(0),
    )
}

/// pgvector's text form, `[0.1,-0.2,...]`.
fn parse_vector(s: &str) -> anyhow::Result<Vec<f32>> {
    let inner = s
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .with_context(|| format!("not a vector: {s:?}"))?;
    inner
        .split(',')
        .map(|x| {
            x.parse::<f32>()
                .with_context(|| format!("not a number: {x:?}"))
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The fixture: a registry in the `aws dynamodb scan` JSON the platform's table exports, and a
// folder with the bucket's layout (`USER/BOT/documents/FILE`).

const USERS: [&str; 3] = [
    "7c0e4a51-1111-4c2d-9e3f-00000000c401",
    "7c0e4a51-1111-4c2d-9e3f-00000000c402",
    "7c0e4a51-1111-4c2d-9e3f-00000000c403",
];

const FILES: [&str; 3] = ["guide.md", "notes.txt", "faq.md"];

const WORDS: [&str; 40] = [
    "invoice",
    "workspace",
    "project",
    "retention",
    "backup",
    "customer",
    "refund",
    "policy",
    "support",
    "ticket",
    "deadline",
    "contract",
    "storage",
    "account",
    "password",
    "report",
    "monthly",
    "quarterly",
    "approval",
    "manager",
    "team",
    "upload",
    "download",
    "archive",
    "trash",
    "thirty",
    "days",
    "within",
    "after",
    "before",
    "every",
    "request",
    "priority",
    "urgent",
    "holiday",
    "office",
    "remote",
    "shipping",
    "warehouse",
    "schedule",
];

/// Vietnamese words, so that chunks hold multi-byte text too.
const VI_WORDS: [&str; 16] = [
    "sản phẩm",
    "đổi trả",
    "miễn phí",
    "trong vòng",
    "ngày",
    "hoàn tiền",
    "tài khoản",
    "ngân hàng",
    "hỗ trợ",
    "khách hàng",
    "bảo hành",
    "cửa hàng",
    "giao hàng",
    "đơn hàng",
    "thanh toán",
    "liên hệ",
];

/// A bot's id: 26 characters, like the platform's ULIDs.
fn bot_id(n: u32) -> String {
    format!("01JECHAS000000000000000{n:03}")
}

/// A document of 12 to 24 sentences in paragraphs, drawn from `rng`; some are Vietnamese.
fn document(rng: &mut SeededRng, bot: u32, file: &str) -> String {
    let vietnamese = rng.below(4) == 0;
    let mut out = format!("# {file} of bot {bot}\n\n");
    let sentences = 12 + rng.below(13);
    for i in 0..sentences {
        let words = 5 + rng.below(8);
        let sentence: Vec<&str> = (0..words)
            .map(|_| {
                if vietnamese {
                    VI_WORDS[rng.below(VI_WORDS.len() as u64) as usize]
                } else {
                    WORDS[rng.below(WORDS.len() as u64) as usize]
                }
            })
            .collect();
        // A number in each sentence keeps chunks of one bot distinct.
        out.push_str(&format!("Rule {bot}.{i}: {}. ", sentence.join(" ")));
        if rng.below(4) == 0 {
            out.push_str("\n\n");
        }
    }
    out.push('\n');
    out
}

/// Writes `bots.json` and `docs/` under `dir`; returns their paths.
fn write_fixture(dir: &Path) -> anyhow::Result<(PathBuf, PathBuf)> {
    let documents = dir.join("docs");
    let mut rng = SeededRng::new(0x0c4a_05eb);
    let mut items = Vec::new();
    for n in 1..=BOTS {
        let (user, bot) = (USERS[(n % 3) as usize], bot_id(n));
        let files = &FILES[..1 + (n % 3) as usize];
        let folder = documents.join(user).join(&bot).join("documents");
        std::fs::create_dir_all(&folder)?;
        for f in files {
            std::fs::write(folder.join(f), document(&mut rng, n, f))?;
        }
        let names: Vec<String> = files.iter().map(|f| format!(r#"{{"S": "{f}"}}"#)).collect();
        items.push(format!(
            r#"{{"PK": {{"S": "{user}"}}, "SK": {{"S": "{user}#BOT#{bot}"}}, "Title": {{"S": "chaos bot {n}"}},
  "Knowledge": {{"M": {{"source_urls": {{"L": []}}, "sitemap_urls": {{"L": []}}, "filenames": {{"L": [{}]}}}}}},
  "EmbeddingParams": {{"M": {{"chunk_size": {{"N": "200"}}, "chunk_overlap": {{"N": "40"}}}}}},
  "SyncStatus": {{"S": "SUCCEEDED"}}}}"#,
            names.join(", ")
        ));
    }
    let registry = dir.join("bots.json");
    std::fs::write(
        &registry,
        format!("{{\"Items\": [\n{}\n]}}\n", items.join(",\n")),
    )?;
    Ok((registry, documents))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(rows: &[(&str, &[f32])]) -> Chunks {
        let mut c = Chunks::new();
        for (k, v) in rows {
            c.entry((*k).to_owned()).or_default().push(v.to_vec());
        }
        c
    }

    #[test]
    fn diff_counts_missing_different_and_extra_rows() {
        let want = chunks(&[("a", &[0.1, 0.2]), ("b", &[0.3, 0.4]), ("c", &[0.5, 0.6])]);
        // Equal within the tolerance: nothing lost.
        let same = chunks(&[
            ("a", &[0.100_01, 0.2]),
            ("b", &[0.3, 0.4]),
            ("c", &[0.5, 0.599_99]),
        ]);
        assert_eq!(diff(&want, &same), (0, 0));
        // b missing, c with another vector, a twice, d not in the reference.
        let got = chunks(&[
            ("a", &[0.1, 0.2]),
            ("a", &[0.1, 0.2]),
            ("c", &[0.5, 0.7]),
            ("d", &[0.0, 0.0]),
        ]);
        assert_eq!(diff(&want, &got), (2, 2));
    }

    #[test]
    fn vectors_parse_from_pgvector_text() {
        assert_eq!(
            parse_vector("[1,-0.5,2e-3]").unwrap(),
            vec![1.0, -0.5, 0.002]
        );
        assert!(parse_vector("").is_err() && parse_vector("[1,x]").is_err());
    }
}
