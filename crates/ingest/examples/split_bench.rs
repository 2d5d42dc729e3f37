//! Splitter throughput benchmark (run by `bench/split/run.sh`).
//!
//! `split_bench generate PATH MB` writes a deterministic mixed English/Vietnamese corpus;
//! `split_bench run PATH [CHUNK_SIZE OVERLAP]` splits it with the platform's settings, in
//! memory and streamed from disk, and prints one JSON line with the best of three runs.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::process::ExitCode;
use std::time::Instant;

use ragshift_ingest::encoding::TextStream;
use ragshift_ingest::{Splitter, StreamSplitter};
use ragshift_testkit::words::{EN, VI};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn sentence(rng: &mut Rng, out: &mut String) {
    let words = if rng.below(2) == 0 { EN } else { VI };
    let n = 6 + rng.below(20);
    for i in 0..n {
        let w = words[rng.below(words.len())];
        if i == 0 {
            let mut cs = w.chars();
            if let Some(c) = cs.next() {
                out.extend(c.to_uppercase());
                out.push_str(cs.as_str());
            }
        } else {
            out.push_str(w);
        }
        if i + 1 < n {
            out.push_str(if rng.below(12) == 0 { ", " } else { " " });
        }
    }
    out.push_str([".", ".", ".", "?", "!"][rng.below(5)]);
}

fn generate(path: &str, mb: usize) -> std::io::Result<()> {
    let mut rng = Rng(0x5EED_CAFE_F00D_BEEF);
    let mut w = BufWriter::new(File::create(path)?);
    let target = mb << 20;
    let mut written = 0;
    let mut section = String::new();
    while written < target {
        section.clear();
        for p in 0..(3 + rng.below(10)) {
            if p > 0 {
                section.push_str("\n\n");
            }
            if rng.below(6) == 0 {
                for _ in 0..(2 + rng.below(4)) {
                    section.push_str("- ");
                    sentence(&mut rng, &mut section);
                    section.push('\n');
                }
            } else {
                for s in 0..(2 + rng.below(7)) {
                    if s > 0 {
                        section.push(' ');
                    }
                    sentence(&mut rng, &mut section);
                }
            }
        }
        section.push_str("\n\n\n");
        w.write_all(section.as_bytes())?;
        written += section.len();
    }
    w.flush()
}

fn run(path: &str, size: usize, overlap: usize) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    let splitter = Splitter::with_sizes(size, overlap).map_err(|e| e.to_string())?;
    let bytes = text.len();
    let chars = text.chars().count();

    let mut best_mem = f64::MAX;
    let mut chunks = 0;
    let mut chunk_chars = 0;
    for _ in 0..3 {
        let t = Instant::now();
        let out = splitter.split(path, &text);
        let secs = t.elapsed().as_secs_f64();
        chunks = out.len();
        chunk_chars = out.iter().map(|c| c.text.chars().count()).sum::<usize>();
        drop(out);
        best_mem = best_mem.min(secs);
    }

    let mut best_stream = f64::MAX;
    for _ in 0..3 {
        let t = Instant::now();
        let file = File::open(path).map_err(|e| e.to_string())?;
        let mut stream = TextStream::new(file);
        let mut n = 0usize;
        let mut split = StreamSplitter::new(splitter, path, |_c| {
            n += 1;
            Ok::<(), ()>(())
        });
        while let Some(block) = stream.next_block().map_err(|e| e.to_string())? {
            split.push(&block).map_err(|()| "sink")?;
        }
        split.finish().map_err(|()| "sink")?;
        best_stream = best_stream.min(t.elapsed().as_secs_f64());
        if n != chunks {
            return Err(format!("streamed {n} chunks, in memory {chunks}"));
        }
    }
    let mb = bytes as f64 / (1024.0 * 1024.0);
    let line = format!(
        "{{\"bytes\":{bytes},\"chars\":{chars},\"chunks\":{chunks},\"mean_chunk_chars\":{:.0},\"seconds\":{best_mem:.4},\
         \"mb_per_s\":{:.1},\"chars_per_s\":{:.0},\"stream_seconds\":{best_stream:.4},\
         \"stream_mb_per_s\":{:.1},\"stream_chars_per_s\":{:.0}}}",
        chunk_chars as f64 / chunks.max(1) as f64,
        mb / best_mem,
        chars as f64 / best_mem,
        mb / best_stream,
        chars as f64 / best_stream,
    );
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["generate", path, mb] => mb
            .parse()
            .map_err(|e| format!("MB: {e}"))
            .and_then(|mb| generate(path, mb).map_err(|e| e.to_string())),
        ["run", path] => run(path, 1000, 200),
        ["run", path, size, overlap] => match (size.parse(), overlap.parse()) {
            (Ok(s), Ok(o)) => run(path, s, o),
            _ => Err("CHUNK_SIZE and OVERLAP must be numbers".into()),
        },
        _ => Err(
            "usage: split_bench generate PATH MB | split_bench run PATH [CHUNK_SIZE OVERLAP]"
                .into(),
        ),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("split_bench: {e}");
            ExitCode::FAILURE
        }
    }
}
