//! CSV and TSV: each row becomes `column: value` lines (empty values left out), rows separated
//! by a blank line, so every chunk says what its numbers mean — the way the platform's CSV
//! loader presented rows. Read as a stream: a CSV of any size is rendered record by record.

use std::io::{Cursor, Read};

use crate::encoding::{DecodeStats, TextStream};
use crate::error::ErrorKind;

/// Rendered text handed out per piece (the splitter gets pieces, not the whole file).
const PIECE_BYTES: usize = 256 * 1024;

/// Renders a CSV stream piece by piece.
pub(crate) struct CsvRenderer<R: Read> {
    reader: ::csv::Reader<std::io::Chain<Cursor<Vec<u8>>, TextStream<R>>>,
    headers: Vec<String>,
    record: ::csv::StringRecord,
    done: bool,
}

impl<R: Read> CsvRenderer<R> {
    /// Reads the first block to pick the delimiter (`\t` for TSV-looking data, `;` when it
    /// outnumbers `,` on the first line), then the header row.
    pub(crate) fn new(reader: R) -> Result<Self, ErrorKind> {
        let mut stream = TextStream::new(reader);
        let first = stream
            .next_block()
            .map_err(|e| ErrorKind::io(&e))?
            .unwrap_or_default();
        let first_line = first.lines().next().unwrap_or_default();
        let count = |c: char| first_line.matches(c).count();
        let delimiter = if count('\t') > count(',').max(count(';')) {
            b'\t'
        } else if count(';') > count(',') {
            b';'
        } else {
            b','
        };
        let chained = Cursor::new(first.into_bytes()).chain(stream);
        let mut reader = ::csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .flexible(true)
            .has_headers(true)
            .from_reader(chained);
        let headers = reader
            .headers()
            .map_err(|e| ErrorKind::corrupt("csv", e))?
            .iter()
            .enumerate()
            .map(|(i, h)| {
                let h = h.trim();
                if h.is_empty() {
                    format!("column {}", i + 1)
                } else {
                    h.to_owned()
                }
            })
            .collect();
        Ok(Self {
            reader,
            headers,
            record: ::csv::StringRecord::new(),
            done: false,
        })
    }

    /// What decoding found (call after the last piece).
    pub(crate) fn stats(&self) -> DecodeStats {
        self.reader.get_ref().get_ref().1.stats()
    }

    /// The next piece of rendered text, or `None` at the end.
    pub(crate) fn next_piece(&mut self) -> Result<Option<String>, ErrorKind> {
        if self.done {
            return Ok(None);
        }
        let mut out = String::new();
        while out.len() < PIECE_BYTES {
            let more = self
                .reader
                .read_record(&mut self.record)
                .map_err(|e| match e.kind() {
                    ::csv::ErrorKind::Io(io) => ErrorKind::io(io),
                    _ => ErrorKind::corrupt("csv", e),
                })?;
            if !more {
                self.done = true;
                break;
            }
            let before = out.len();
            for (i, value) in self.record.iter().enumerate() {
                let value = value.trim();
                if value.is_empty() {
                    continue;
                }
                match self.headers.get(i) {
                    Some(h) => out.push_str(h),
                    None => out.push_str(&format!("column {}", i + 1)),
                }
                out.push_str(": ");
                out.push_str(value);
                out.push('\n');
            }
            if out.len() > before {
                out.push('\n');
            }
        }
        Ok(Some(out))
    }
}

/// Renders a whole CSV held in memory (the same text the streaming path produces).
pub(super) fn load(bytes: &[u8]) -> Result<(String, DecodeStats), ErrorKind> {
    let mut renderer = CsvRenderer::new(bytes)?;
    let mut text = String::new();
    while let Some(piece) = renderer.next_piece()? {
        text.push_str(&piece);
    }
    Ok((text, renderer.stats()))
}
