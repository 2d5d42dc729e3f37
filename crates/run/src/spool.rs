//! The embedded rows of one bot, kept on disk until the bot's outcome is known: a bot's rows
//! are written in one transaction only once every source has loaded (a source that fails late
//! must not leave its early chunks behind), and holding them in memory until then would make a
//! worker's memory grow with the bot. The spool is an anonymous temporary file (in `TMPDIR`,
//! gone when the worker ends, even on a crash), written and read back in batches.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};

use ragshift_model::StoredRow;

/// Rows written so far, on disk.
pub struct Spool {
    file: BufWriter<File>,
    rows: usize,
}

impl Spool {
    /// An empty spool in a new anonymous temporary file.
    pub fn new() -> io::Result<Self> {
        Ok(Self {
            file: BufWriter::with_capacity(1 << 20, tempfile::tempfile()?),
            rows: 0,
        })
    }

    /// Appends a row.
    pub fn push(&mut self, row: &StoredRow) -> io::Result<()> {
        for text in [&row.id, &row.bot_id, &row.content, &row.source] {
            write_len(&mut self.file, text.len())?;
            self.file.write_all(text.as_bytes())?;
        }
        write_len(&mut self.file, row.embedding.len())?;
        for x in &row.embedding {
            self.file.write_all(&x.to_le_bytes())?;
        }
        self.rows += 1;
        Ok(())
    }

    /// Rows pushed.
    pub fn len(&self) -> usize {
        self.rows
    }

    /// Whether no row was pushed.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Reads the rows back, in the order they were pushed.
    pub fn into_reader(self) -> io::Result<SpoolReader> {
        let mut file = self.file.into_inner().map_err(|e| e.into_error())?;
        file.seek(SeekFrom::Start(0))?;
        Ok(SpoolReader {
            file: BufReader::with_capacity(1 << 20, file),
            left: self.rows,
        })
    }
}

/// The rows of a [`Spool`], batch by batch.
pub struct SpoolReader {
    file: BufReader<File>,
    left: usize,
}

impl SpoolReader {
    /// Up to `max` next rows; empty at the end.
    pub fn next_batch(&mut self, max: usize) -> io::Result<Vec<StoredRow>> {
        let n = self.left.min(max.max(1));
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let id = self.text()?;
            let bot_id = self.text()?;
            let content = self.text()?;
            let source = self.text()?;
            let dims = self.len()?;
            let mut raw = vec![0u8; dims * 4];
            self.file.read_exact(&mut raw)?;
            let embedding = raw
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            out.push(StoredRow {
                id,
                bot_id,
                content,
                source,
                embedding,
            });
        }
        self.left -= n;
        Ok(out)
    }

    fn len(&mut self) -> io::Result<usize> {
        let mut b = [0u8; 8];
        self.file.read_exact(&mut b)?;
        usize::try_from(u64::from_le_bytes(b)).map_err(io::Error::other)
    }

    fn text(&mut self) -> io::Result<String> {
        let mut raw = vec![0u8; self.len()?];
        self.file.read_exact(&mut raw)?;
        String::from_utf8(raw).map_err(io::Error::other)
    }
}

fn write_len(w: &mut impl Write, n: usize) -> io::Result<()> {
    w.write_all(&(n as u64).to_le_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(n: usize) -> StoredRow {
        StoredRow {
            id: format!("{n:026}"),
            bot_id: "bot".into(),
            content: "héllo ".repeat(n),
            source: if n.is_multiple_of(2) {
                String::new()
            } else {
                format!("s3://b/{n}")
            },
            embedding: (0..n).map(|i| i as f32 * -0.5 + f32::EPSILON).collect(),
        }
    }

    #[test]
    fn rows_come_back_exactly_in_batches() {
        let mut spool = Spool::new().unwrap();
        let rows: Vec<StoredRow> = (0..25).map(row).collect();
        for r in &rows {
            spool.push(r).unwrap();
        }
        assert_eq!(spool.len(), 25);
        let mut reader = spool.into_reader().unwrap();
        let mut back = Vec::new();
        loop {
            let batch = reader.next_batch(7).unwrap();
            if batch.is_empty() {
                break;
            }
            assert!(batch.len() <= 7);
            back.extend(batch);
        }
        assert_eq!(back, rows);
    }
}
