//! Text arrives in any encoding (UTF-8, UTF-16 with a BOM, legacy code pages such as
//! windows-1252 or windows-1258); the store wants UTF-8 without NUL characters (PostgreSQL
//! rejects them in `text`). This module detects the encoding, decodes, replaces invalid bytes
//! with U+FFFD and counts them so the loader can report it, and normalises line endings.
//!
//! Decoding works on blocks with a bounded buffer ([`TextStream`]), so a 200 MB file never has
//! to be in memory; decoding a whole buffer ([`decode_all`]) runs the very same code.

use std::io::{self, Read};

use encoding_rs::{Decoder, DecoderResult, Encoding, UTF_8};

/// How many leading bytes decide the encoding.
const SNIFF_BYTES: usize = 64 * 1024;
/// Bytes read per block when streaming.
const BLOCK_BYTES: usize = 256 * 1024;

/// What decoding found out, for the source's report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeStats {
    /// The encoding the text was read as.
    pub encoding: &'static Encoding,
    /// Invalid byte sequences replaced by U+FFFD.
    pub replaced: usize,
}

impl DecodeStats {
    /// A warning for the report when the text was not clean UTF-8, or `None`.
    pub fn warning(&self) -> Option<String> {
        match (self.encoding == UTF_8, self.replaced) {
            (true, 0) => None,
            (true, n) => Some(format!(
                "{n} invalid UTF-8 byte sequence(s) were replaced by U+FFFD"
            )),
            (false, 0) => Some(format!(
                "text was converted to UTF-8 from {}",
                self.encoding.name()
            )),
            (false, n) => Some(format!(
                "text was converted to UTF-8 from {}; {n} invalid byte sequence(s) were replaced by U+FFFD",
                self.encoding.name()
            )),
        }
    }
}

/// Picks the encoding of a document from its first bytes: a BOM wins, then valid (or almost
/// valid) UTF-8, then a statistical guess. Returns the encoding and the BOM length to skip.
pub fn sniff(head: &[u8], complete: bool) -> (&'static Encoding, usize) {
    if let Some((enc, bom)) = Encoding::for_bom(head) {
        return (enc, bom);
    }
    let (valid_multibyte, invalid) = utf8_census(head, complete);
    if invalid == 0 || valid_multibyte >= 4 * invalid {
        return (UTF_8, 0);
    }
    let mut detector = chardetng::EncodingDetector::new(chardetng::Iso2022JpDetection::Deny);
    detector.feed(head, complete);
    (detector.guess(None, chardetng::Utf8Detection::Deny), 0)
}

/// Counts valid non-ASCII UTF-8 sequences and invalid ones (a truncated sequence at the end of
/// an incomplete head is not counted as invalid).
fn utf8_census(mut bytes: &[u8], complete: bool) -> (usize, usize) {
    let (mut valid, mut invalid) = (0, 0);
    loop {
        match std::str::from_utf8(bytes) {
            Ok(s) => {
                valid += s.bytes().filter(|b| *b >= 0xC0).count();
                return (valid, invalid);
            }
            Err(e) => {
                let (good, rest) = bytes.split_at(e.valid_up_to());
                valid += good.iter().filter(|b| **b >= 0xC0).count();
                match e.error_len() {
                    Some(n) => {
                        invalid += 1;
                        bytes = rest.get(n..).unwrap_or_default();
                    }
                    None => {
                        if complete {
                            invalid += 1;
                        }
                        return (valid, invalid);
                    }
                }
            }
        }
    }
}

/// Turns decoded text into what the store accepts: CRLF and lone CR become LF, NUL is dropped.
/// Keeps state across blocks so a CRLF split between two blocks is handled.
#[derive(Debug, Default)]
struct Cleaner {
    pending_cr: bool,
}

impl Cleaner {
    fn clean(&mut self, s: &str, out: &mut String) {
        if !s.bytes().any(|b| b == b'\r' || b == 0) && !self.pending_cr {
            out.push_str(s);
            return;
        }
        for ch in s.chars() {
            if self.pending_cr {
                self.pending_cr = false;
                out.push('\n');
                if ch == '\n' {
                    continue;
                }
            }
            match ch {
                '\r' => self.pending_cr = true,
                '\0' => {}
                c => out.push(c),
            }
        }
    }

    fn finish(&mut self, out: &mut String) {
        if std::mem::take(&mut self.pending_cr) {
            out.push('\n');
        }
    }
}

/// Decodes `src` into `out`, replacing malformed sequences and counting them.
fn decode_into(
    decoder: &mut Decoder,
    mut src: &[u8],
    last: bool,
    out: &mut String,
    replaced: &mut usize,
) {
    loop {
        let need = decoder
            .max_utf8_buffer_length_without_replacement(src.len())
            .unwrap_or(src.len().saturating_mul(3).saturating_add(16));
        out.reserve(need.max(16));
        let (result, read) = decoder.decode_to_string_without_replacement(src, out, last);
        src = src.get(read..).unwrap_or_default();
        match result {
            DecoderResult::InputEmpty => return,
            DecoderResult::OutputFull => {}
            DecoderResult::Malformed(_, _) => {
                out.push('\u{FFFD}');
                *replaced += 1;
            }
        }
    }
}

/// Decodes a whole document held in memory (same rules as streaming).
pub fn decode_all(bytes: &[u8]) -> (String, DecodeStats) {
    let head = &bytes[..bytes.len().min(SNIFF_BYTES)];
    let (encoding, bom) = sniff(head, bytes.len() <= SNIFF_BYTES);
    let mut decoder = encoding.new_decoder_without_bom_handling();
    let mut raw = String::with_capacity(bytes.len());
    let mut replaced = 0;
    decode_into(
        &mut decoder,
        bytes.get(bom..).unwrap_or_default(),
        true,
        &mut raw,
        &mut replaced,
    );
    let mut text = String::with_capacity(raw.len());
    let mut cleaner = Cleaner::default();
    cleaner.clean(&raw, &mut text);
    cleaner.finish(&mut text);
    (text, DecodeStats { encoding, replaced })
}

/// Reads any byte stream as UTF-8 text, block by block, with a bounded buffer.
pub struct TextStream<R> {
    reader: R,
    decoder: Option<Decoder>,
    encoding: &'static Encoding,
    cleaner: Cleaner,
    replaced: usize,
    done: bool,
    buf: Vec<u8>,
    /// Decoded bytes not yet handed out through `Read`.
    pending: Vec<u8>,
    pending_at: usize,
}

impl<R: Read> TextStream<R> {
    /// Wraps a reader; nothing is read until the first block is asked for.
    pub fn new(reader: R) -> Self {
        Self {
            reader,
            decoder: None,
            encoding: UTF_8,
            cleaner: Cleaner::default(),
            replaced: 0,
            done: false,
            buf: Vec::new(),
            pending: Vec::new(),
            pending_at: 0,
        }
    }

    /// What decoding found so far (final once [`TextStream::next_block`] returned `None`).
    pub fn stats(&self) -> DecodeStats {
        DecodeStats {
            encoding: self.encoding,
            replaced: self.replaced,
        }
    }

    fn fill(&mut self, want: usize) -> io::Result<bool> {
        let start = self.buf.len();
        self.buf.resize(start + want, 0);
        let mut filled = start;
        let mut eof = false;
        while filled < start + want {
            match self.reader.read(&mut self.buf[filled..]) {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.buf.truncate(filled);
        Ok(eof)
    }

    /// The next block of clean UTF-8 text, or `None` at the end of the stream.
    pub fn next_block(&mut self) -> io::Result<Option<String>> {
        if self.done {
            return Ok(None);
        }
        self.buf.clear();
        let mut skip = 0;
        let eof = if self.decoder.is_none() {
            let eof = self.fill(SNIFF_BYTES)?;
            let (encoding, bom) = sniff(&self.buf, eof);
            self.encoding = encoding;
            self.decoder = Some(encoding.new_decoder_without_bom_handling());
            skip = bom;
            eof
        } else {
            self.fill(BLOCK_BYTES)?
        };
        let mut raw = String::new();
        if let Some(decoder) = self.decoder.as_mut() {
            decode_into(
                decoder,
                self.buf.get(skip..).unwrap_or_default(),
                eof,
                &mut raw,
                &mut self.replaced,
            );
        }
        let mut text = String::with_capacity(raw.len());
        self.cleaner.clean(&raw, &mut text);
        if eof {
            self.cleaner.finish(&mut text);
            self.done = true;
        }
        Ok(Some(text))
    }
}

impl<R: Read> Read for TextStream<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pending_at >= self.pending.len() {
            match self.next_block()? {
                None => return Ok(0),
                Some(block) => {
                    self.pending = block.into_bytes();
                    self.pending_at = 0;
                }
            }
        }
        let avail = &self.pending[self.pending_at..];
        let n = avail.len().min(out.len());
        out[..n].copy_from_slice(&avail[..n]);
        self.pending_at += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream_all(bytes: &[u8]) -> (String, DecodeStats) {
        let mut s = TextStream::new(bytes);
        let mut out = String::new();
        while let Some(b) = s.next_block().unwrap() {
            out.push_str(&b);
        }
        (out, s.stats())
    }

    #[test]
    fn utf16_with_bom_becomes_utf8() {
        let text = "Xin chào thế giới — Tiếng Việt có dấu.\r\nDòng hai.";
        let mut bytes = vec![0xFF, 0xFE];
        for u in text.encode_utf16() {
            bytes.extend_from_slice(&u.to_le_bytes());
        }
        let (decoded, stats) = decode_all(&bytes);
        assert_eq!(decoded, text.replace("\r\n", "\n"));
        assert_eq!(stats.encoding, encoding_rs::UTF_16LE);
        assert_eq!(stream_all(&bytes).0, decoded);
    }

    #[test]
    fn legacy_code_pages_are_detected() {
        let text = "Le café où l'on déjeune coûte très cher. Größe, naïve, façade, élève, garçon. "
            .repeat(20);
        let (bytes, _, _) = encoding_rs::WINDOWS_1252.encode(&text);
        let (decoded, stats) = decode_all(&bytes);
        assert_eq!(decoded, text);
        assert_eq!(stats.encoding, encoding_rs::WINDOWS_1252);
        assert!(stats.warning().unwrap().contains("windows-1252"));
    }

    #[test]
    fn invalid_bytes_are_replaced_and_counted() {
        let mut bytes = "Tiếng Việt rất đẹp, phở và bánh mì. "
            .repeat(10)
            .into_bytes();
        bytes.extend_from_slice(&[0xFF, b'x', 0xC3]);
        bytes.extend_from_slice(" cuối".as_bytes());
        let (decoded, stats) = decode_all(&bytes);
        assert_eq!(stats.encoding, UTF_8);
        assert_eq!(stats.replaced, 2);
        assert!(decoded.ends_with("\u{FFFD}x\u{FFFD} cuối"));
        assert!(stats.warning().unwrap().contains("2 invalid"));
        assert_eq!(stream_all(&bytes), (decoded, stats));
    }

    #[test]
    fn nul_is_dropped_and_line_endings_normalised_across_blocks() {
        let mut text = "a".repeat(SNIFF_BYTES - 1);
        text.push_str("\r\nb\0c\rd");
        let (decoded, _) = stream_all(text.as_bytes());
        assert!(decoded.ends_with("a\nbc\nd"));
        assert_eq!(decoded, decode_all(text.as_bytes()).0);
    }

    #[test]
    fn read_adapter_yields_the_same_text() {
        let text = "Một hai ba\r\nbốn năm sáu";
        let mut s = TextStream::new(text.as_bytes());
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        assert_eq!(out, "Một hai ba\nbốn năm sáu");
    }
}
