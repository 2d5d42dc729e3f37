//! Splitter properties on random mixed-language documents, and streaming equivalence.

use std::ops::Range;

use ragshift_ingest::{
    IngestOptions, Ingestor, SourceInput, SourceOutcome, Splitter, StreamSplitter,
};
use ragshift_model::{Chunk, EmbeddingParams};
use ragshift_testkit::words::{EN, VI};

/// A small deterministic generator (xorshift64*), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

const ENDS: &[&str] = &[
    ".", "!", "?", ",", ";", ":", "", "", "", "\u{2026}", ".\"", ")",
];
const SEPS: &[&str] = &[
    " ",
    " ",
    " ",
    " ",
    " ",
    " ",
    " ",
    "  ",
    "\t",
    "\n",
    "\n",
    "\n\n",
    "\n\n\n",
    "\n\n\n\n",
    " \n \n \n ",
];

fn document(rng: &mut Rng, words: usize) -> String {
    document_with(rng, words, SEPS)
}

fn document_with(rng: &mut Rng, words: usize, seps: &[&str]) -> String {
    let mut s = String::new();
    if rng.below(4) == 0 {
        s.push_str(rng.pick(&[" ", "\n\n", "\t "]));
    }
    for _ in 0..words {
        match rng.below(40) {
            0 => {
                // A long token without spaces (a URL).
                let n = 20 + rng.below(300);
                s.push_str("https://example.com/");
                for _ in 0..n {
                    s.push(char::from(b'a' + rng.below(26) as u8));
                }
            }
            1 => s.push_str("これは日本語の文です。次の文もあります！"),
            2 => s.push_str("Vie\u{0323}\u{0302}t"), // decomposed diacritics
            3 => s.push_str("🙂🚀"),
            _ => s.push_str(if rng.below(2) == 0 {
                rng.pick(EN)
            } else {
                rng.pick(VI)
            }),
        }
        s.push_str(rng.pick(ENDS));
        s.push_str(rng.pick(seps));
    }
    s
}

fn chars(s: &str) -> usize {
    s.chars().count()
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0B | 0x0C)
}

fn check_properties(doc: &str, size: usize, overlap: usize) -> Vec<Range<usize>> {
    let s = Splitter::with_sizes(size, overlap).unwrap();
    let spans: Vec<Range<usize>> = s.spans(doc).collect();
    let ctx = |i: usize| {
        let around = |r: &Range<usize>| format!("{:?}@{:?}", &doc[r.clone()], r);
        let prev = if i > 0 {
            around(&spans[i - 1])
        } else {
            String::new()
        };
        let near = &doc[doc.floor_char_boundary(spans[i].start.saturating_sub(40))
            ..doc.ceil_char_boundary((spans[i].end + 40).min(doc.len()))];
        format!(
            "size {size} overlap {overlap} chunk {i}: prev {prev} this {} near {near:?}",
            around(&spans[i])
        )
    };
    let mut covered = vec![false; doc.len()];
    for (i, r) in spans.iter().enumerate() {
        let text = &doc[r.clone()];
        // Sizes: never above chunk_size, never empty, trimmed.
        assert!(
            chars(text) <= size,
            "{} chars > {size}: {}",
            chars(text),
            ctx(i)
        );
        assert!(!text.is_empty(), "{}", ctx(i));
        assert!(
            !is_ws(text.as_bytes()[0]) && !is_ws(*text.as_bytes().last().unwrap()),
            "{}",
            ctx(i)
        );
        covered[r.clone()].iter_mut().for_each(|c| *c = true);
        if i > 0 {
            let prev = &spans[i - 1];
            assert!(
                r.start > prev.start && r.end > prev.end,
                "no progress: {}",
                ctx(i)
            );
            if r.start < prev.end {
                let shared = chars(&doc[r.start..prev.end]);
                assert!(
                    shared <= overlap,
                    "overlap {shared} > {overlap}: {}",
                    ctx(i)
                );
            } else {
                let gap = &doc[prev.end..r.start];
                let paragraph = gap.matches('\n').count() >= 3;
                // An overlap cannot start on a combining mark (it stays with its letter).
                let combining_tail = doc[prev.clone()]
                    .chars()
                    .rev()
                    .take(overlap)
                    .any(|c| ('\u{300}'..='\u{36f}').contains(&c));
                // Nor when the whitespace after the chunk fills the next one's window.
                let no_room = size <= chars(gap) + 1;
                assert!(
                    overlap == 0
                        || paragraph
                        || combining_tail
                        || no_room
                        || chars(&doc[prev.clone()]) <= 2,
                    "missing overlap (gap {gap:?}): {}",
                    ctx(i)
                );
                assert!(
                    gap.bytes().all(is_ws),
                    "text lost in gap {gap:?}: {}",
                    ctx(i)
                );
            }
        }
    }
    // No lost text: every non-whitespace byte is inside some chunk.
    for (i, b) in doc.bytes().enumerate() {
        assert!(
            covered[i] || is_ws(b),
            "byte {i} lost: size {size} overlap {overlap} doc {doc:?}"
        );
    }
    // Deterministic.
    assert_eq!(spans, s.spans(doc).collect::<Vec<_>>());
    spans
}

fn stream_split(doc: &str, s: Splitter, rng: &mut Rng) -> Vec<Chunk> {
    let mut out = Vec::new();
    let mut split = StreamSplitter::new(s, "doc", |c| {
        out.push(c);
        Ok::<(), ()>(())
    });
    let mut rest = doc;
    while !rest.is_empty() {
        let mut cut = (1 + rng.below(64)).min(rest.len());
        while !rest.is_char_boundary(cut) {
            cut += 1;
        }
        split.push(&rest[..cut]).unwrap();
        rest = &rest[cut..];
    }
    let total = split.finish().unwrap();
    assert_eq!(total, chars(doc));
    out
}

#[test]
fn random_documents_keep_every_property() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for round in 0..400 {
        let words = 1 + rng.below(300);
        let doc = document(&mut rng, words);
        let size = 1 + rng.below(if round % 4 == 0 { 12 } else { 300 });
        let overlap = rng.below(size);
        let spans = check_properties(&doc, size, overlap);
        // Streaming in tiny random pieces gives exactly the same chunks.
        let splitter = Splitter::with_sizes(size, overlap).unwrap();
        let whole = splitter.split("doc", &doc);
        assert_eq!(whole.len(), spans.len());
        assert_eq!(
            stream_split(&doc, splitter, &mut rng),
            whole,
            "size {size} overlap {overlap}"
        );
    }
}

#[test]
fn platform_settings_give_full_chunks_and_about_the_overlap() {
    let mut rng = Rng(42);
    // Prose without the paragraph separator (after which chunks start fresh).
    let doc = document_with(&mut rng, 20_000, &[" ", " ", " ", " ", " ", "\n", "\n\n"]);
    let s = Splitter::new(&EmbeddingParams::default()).unwrap();
    let spans: Vec<_> = s.spans(&doc).collect();
    let sizes: Vec<usize> = spans.iter().map(|r| chars(&doc[r.clone()])).collect();
    let body = &sizes[..sizes.len() - 1];
    let mean = body.iter().sum::<usize>() as f64 / body.len() as f64;
    assert!(
        mean > 850.0 && body.iter().all(|n| *n <= 1000),
        "mean {mean}"
    );
    let overlaps: Vec<usize> = spans
        .windows(2)
        .map(|w| {
            if w[1].start < w[0].end {
                chars(&doc[w[1].start..w[0].end])
            } else {
                0
            }
        })
        .collect();
    let mean_overlap = overlaps.iter().sum::<usize>() as f64 / overlaps.len() as f64;
    assert!(
        (100.0..=200.0).contains(&mean_overlap),
        "mean overlap {mean_overlap}"
    );
    assert!(overlaps.iter().all(|o| *o <= 200));
}

#[test]
fn streaming_memory_stays_bounded() {
    let mut rng = Rng(7);
    let piece = document(&mut rng, 40_000); // ~250 KB
    let s = Splitter::new(&EmbeddingParams::default()).unwrap();
    let mut emitted = 0usize;
    let mut split = StreamSplitter::new(s, "big", |_c| {
        emitted += 1;
        Ok::<(), ()>(())
    });
    let mut max_buffered = 0;
    let mut pushed = 0;
    while pushed < 40 << 20 {
        split.push(&piece).unwrap();
        pushed += piece.len();
        max_buffered = max_buffered.max(split.buffered_len());
    }
    split.finish().unwrap();
    assert!(
        max_buffered < 3 * piece.len() + 16 * 1024,
        "held {max_buffered} bytes for {pushed} pushed"
    );
    assert!(emitted > 20_000, "{emitted} chunks");
}

#[tokio::test]
async fn a_large_file_streamed_from_disk_gives_the_same_chunks_as_splitting_it_whole() {
    let mut rng = Rng(2024);
    let mut doc = String::new();
    while doc.len() < 6 << 20 {
        doc.push_str(&document(&mut rng, 2000));
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.txt");
    std::fs::write(&path, &doc).unwrap();

    let params = EmbeddingParams::default();
    let ingestor = Ingestor::new(IngestOptions {
        batch_size: 32,
        ..IngestOptions::default()
    })
    .unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<Chunk>>(2);
    let collector = tokio::spawn(async move {
        let mut all = Vec::new();
        let mut largest = 0;
        while let Some(batch) = rx.recv().await {
            largest = largest.max(batch.len());
            all.extend(batch);
        }
        (all, largest)
    });
    let report = ingestor
        .ingest(SourceInput::Path(path.clone()), &params, &tx)
        .await;
    drop(tx);
    let (streamed, largest_batch) = collector.await.unwrap();
    assert!(largest_batch <= 32);

    let source = path.display().to_string();
    let whole = Splitter::new(&params).unwrap().split(&source, &doc);
    assert_eq!(streamed.len(), whole.len());
    assert!(
        streamed == whole,
        "streamed chunks differ from whole-document chunks"
    );
    match &report.sources[0].outcome {
        SourceOutcome::Loaded { chars: n, chunks } => {
            assert_eq!(*n, chars(&doc));
            assert_eq!(*chunks, whole.len());
        }
        other => panic!("{other:?}"),
    }
}

async fn ingest_one(input: SourceInput, params: &EmbeddingParams) -> (SourceOutcome, Vec<Chunk>) {
    let ingestor = Ingestor::new(IngestOptions::default()).unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<Chunk>>(1);
    let collector = tokio::spawn(async move {
        let mut all = Vec::new();
        while let Some(batch) = rx.recv().await {
            all.extend(batch);
        }
        all
    });
    let mut report = ingestor.ingest(input, params, &tx).await;
    drop(tx);
    (report.sources.remove(0).outcome, collector.await.unwrap())
}

#[tokio::test]
async fn streamed_csv_and_utf16_readers_match_whole_loading() {
    let params = EmbeddingParams {
        chunk_size: 200,
        chunk_overlap: 40,
        ..EmbeddingParams::default()
    };
    let splitter = Splitter::new(&params).unwrap();

    let mut csv = String::from("Tên,Mô tả,Giá\n");
    for i in 0..3000 {
        csv.push_str(&format!(
            "Món {i},\"Phở bò, nước dùng thơm\",{}\n",
            1000 * i
        ));
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("menu.csv");
    std::fs::write(&path, &csv).unwrap();
    let (outcome, streamed) = ingest_one(SourceInput::Path(path.clone()), &params).await;
    let whole =
        ragshift_ingest::load(&ragshift_ingest::Hint::name("menu.csv"), csv.as_bytes()).unwrap();
    let expected = splitter.split(&path.display().to_string(), &whole.text);
    assert!(
        matches!(outcome, SourceOutcome::Loaded { .. }),
        "{outcome:?}"
    );
    assert_eq!(streamed, expected);
    assert!(streamed[0]
        .text
        .starts_with("Tên: Món 0\nMô tả: Phở bò, nước dùng thơm"));

    // A UTF-16 object read as a stream, named like an S3 object.
    let text = "Đây là một tài liệu tiếng Việt. ".repeat(200);
    let mut bytes = vec![0xFF, 0xFE];
    for u in text.encode_utf16() {
        bytes.extend_from_slice(&u.to_le_bytes());
    }
    let source = "s3://bucket/u1/b1/documents/ghi chú.txt".to_owned();
    let (outcome, streamed) = ingest_one(
        SourceInput::Reader {
            source: source.clone(),
            name_hint: "ghi chú.txt".into(),
            reader: Box::new(std::io::Cursor::new(bytes.clone())),
        },
        &params,
    )
    .await;
    assert!(matches!(outcome, SourceOutcome::Loaded { .. }));
    assert_eq!(streamed, splitter.split(&source, &text));
    assert!(streamed.iter().all(|c| c.source == source));

    // The same object handed over as bytes gives the same chunks.
    let (_, from_bytes) = ingest_one(
        SourceInput::Bytes {
            source: source.clone(),
            name_hint: "ghi chú.txt".into(),
            bytes: bytes.into(),
        },
        &params,
    )
    .await;
    assert_eq!(from_bytes, streamed);
}

#[tokio::test]
async fn max_body_bytes_holds_for_local_files_and_documents_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.txt");
    std::fs::write(&path, "word ".repeat(400)).unwrap();
    let ingestor = Ingestor::new(IngestOptions {
        max_body_bytes: 1000,
        ..IngestOptions::default()
    })
    .unwrap();
    let params = EmbeddingParams::default();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<Chunk>>(4);
    let inputs = vec![
        SourceInput::Path(path.clone()),
        SourceInput::Bytes {
            source: "s3://b/u/bot/documents/big.txt".into(),
            name_hint: "big.txt".into(),
            bytes: vec![b'a'; 1001].into(),
        },
        SourceInput::Bytes {
            source: "s3://b/u/bot/documents/small.txt".into(),
            name_hint: "small.txt".into(),
            bytes: b"small enough".to_vec().into(),
        },
    ];
    let report = ingestor.ingest_all(inputs, &params, &tx).await;
    drop(tx);
    while rx.recv().await.is_some() {}
    let outcomes: Vec<String> = report
        .sources
        .iter()
        .map(|s| format!("{:?}", s.outcome))
        .collect();
    assert!(outcomes[0].contains("TooLarge"), "{outcomes:?}");
    assert!(outcomes[1].contains("TooLarge"), "{outcomes:?}");
    assert!(outcomes[2].contains("Loaded"), "{outcomes:?}");
}
