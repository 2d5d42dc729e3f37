//! The platform's chunking rules: sizes in characters (Unicode scalar values), `chunk_size` and
//! `chunk_overlap` from the bot's [`EmbeddingParams`], sentence-aware.
//!
//! # The rules
//! * A chunk never has more than `chunk_size` characters, and is a slice of the document cut
//!   at character boundaries, trimmed of ASCII whitespace at both ends.
//! * Where a chunk ends, by preference: the last paragraph separator in reach (a whitespace run
//!   with three or more line breaks, the platform's `"\n\n\n"`); else, if it leaves the chunk
//!   at least half full, the last sentence end (`.` `!` `?` `…` and full-width stops, or a
//!   blank line), else the last line break, else the last clause mark (`,` `;` `:`); else the
//!   last word break; and only for text without any space (long URLs, CJK) a plain character
//!   position that does not split a combining mark from its letter.
//! * The next chunk starts about `chunk_overlap` characters before the end of the previous
//!   one, at a sentence start if one lies in the first half of that overlap, else at a word
//!   start, so the overlap never exceeds `chunk_overlap`. After a paragraph separator the next
//!   chunk starts fresh, without overlap: the platform's paragraph separator marks a section
//!   (pages, slides and sheets are joined with it).
//! * No text is lost: every non-whitespace character is in at least one chunk.
//!
//! # Why not the `text-splitter` crate
//! It was evaluated (0.33, 1000/200 characters, on 10 MB of the benchmark corpus): it sizes
//! by characters and supports overlap, but it split 9 M characters/s against about 100 M for
//! the byte scan below (llama_index's SentenceSplitter does about 2 M, and the goal was 20×
//! that), it needs the whole document as one `&str` (a 200 MB file would have to sit in
//! memory), and its choice of break level looks at the whole document, so a streamed file
//! could not be guaranteed the same chunks. These rules depend only on the text near each
//! chunk, which is what makes [`StreamSplitter`] give exactly the chunks [`Splitter::split`]
//! gives.

use std::ops::Range;

use ragshift_model::{Chunk, EmbeddingParams};

use crate::error::ErrorKind;

/// How far past a candidate break the whitespace run is examined to classify it.
const RUN_LOOKAHEAD: usize = 256;

/// Break levels, weakest first.
const WORD: usize = 1;
const CLAUSE: usize = 2;
const LINE: usize = 3;
/// Sentence ends and blank lines (a paragraph of Markdown or of a page ends a sentence too).
const SENTENCE: usize = 4;
const PARAGRAPH: usize = 5;
const LEVELS: usize = 6;

/// Splits documents into chunks following the platform's rules (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Splitter {
    chunk_size: usize,
    chunk_overlap: usize,
}

/// One chunk's place in its document.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Step {
    /// Byte range of the chunk's text.
    chunk: Range<usize>,
    /// Where the next chunk starts, or `None` when this was the last one.
    next: Option<usize>,
}

impl Splitter {
    /// A splitter for a bot's parameters; refuses sizes that cannot make progress.
    pub fn new(params: &EmbeddingParams) -> Result<Self, ErrorKind> {
        Self::with_sizes(params.chunk_size, params.chunk_overlap)
    }

    /// A splitter with explicit sizes (characters).
    pub fn with_sizes(chunk_size: usize, chunk_overlap: usize) -> Result<Self, ErrorKind> {
        if chunk_size == 0 {
            return Err(ErrorKind::InvalidParams {
                detail: "chunk_size must be at least 1".into(),
            });
        }
        if chunk_overlap >= chunk_size {
            return Err(ErrorKind::InvalidParams {
                detail: format!(
                    "chunk_overlap ({chunk_overlap}) must be smaller than chunk_size ({chunk_size})"
                ),
            });
        }
        Ok(Self {
            chunk_size,
            chunk_overlap,
        })
    }

    /// Maximum characters per chunk.
    pub fn chunk_size(&self) -> usize {
        self.chunk_size
    }

    /// Target overlap in characters.
    pub fn chunk_overlap(&self) -> usize {
        self.chunk_overlap
    }

    /// Byte ranges of the chunks of `text`, in order; each is `&text[range]`.
    pub fn spans<'a>(&'a self, text: &'a str) -> impl Iterator<Item = Range<usize>> + 'a {
        let mut next = Some(skip_ws(text.as_bytes(), 0));
        let mut prev_end = 0;
        std::iter::from_fn(move || {
            let start = next?;
            if start >= text.len() {
                next = None;
                return None;
            }
            let step = self.step(text.as_bytes(), start, prev_end, true);
            next = step.next;
            prev_end = step.chunk.end;
            Some(step.chunk)
        })
    }

    /// Splits a whole document; every chunk carries `source`.
    pub fn split(&self, source: &str, text: &str) -> Vec<Chunk> {
        self.spans(text)
            .enumerate()
            .map(|(index, r)| Chunk {
                source: source.to_owned(),
                index,
                text: text[r].to_owned(),
            })
            .collect()
    }

    /// Bytes that must be available after a chunk start before the chunk can be decided without
    /// knowing the end of the document.
    fn horizon(&self) -> usize {
        self.chunk_size.saturating_mul(4) + RUN_LOOKAHEAD + 8
    }

    /// Decides the chunk starting at `start` (a non-whitespace character boundary). Breaks at or
    /// before `min_end` (the previous chunk's end) are ignored, so a chunk never lies inside
    /// the previous one even with a large overlap. `eof` says whether `b` ends where the
    /// document ends; if not, `b` must extend `horizon()` bytes past `start`.
    fn step(&self, b: &[u8], start: usize, min_end: usize, eof: bool) -> Step {
        let len = b.len();
        let mut best = [usize::MAX; LEVELS];
        let mut best_chars = [0usize; LEVELS];
        let mut pos = start;
        let mut chars = 0usize;
        let mut reached_end = false;
        loop {
            if pos >= len {
                reached_end = eof;
                break;
            }
            let c = b[pos];
            if is_ws(c) && pos > start && pos > min_end && !is_ws(b[pos - 1]) {
                let level = run_level(b, start, pos);
                for l in 1..=level {
                    best[l] = pos;
                    best_chars[l] = chars;
                }
            }
            if chars == self.chunk_size {
                break;
            }
            if c < 0x80 {
                pos += 1;
            } else {
                let w = utf8_width(c);
                let cjk_stop = is_cjk_stop(b, pos);
                pos = (pos + w).min(len);
                if cjk_stop
                    && pos < len
                    && pos > min_end
                    && !is_ws(b[pos])
                    && chars < self.chunk_size
                {
                    for l in 1..=SENTENCE {
                        best[l] = pos;
                        best_chars[l] = chars + 1;
                    }
                }
            }
            chars += 1;
        }

        if reached_end {
            return Step {
                chunk: start..trim_end(b, start, len),
                next: None,
            };
        }

        let min_fill = self.chunk_size / 2;
        let mut end = None;
        let mut paragraph = false;
        if best[PARAGRAPH] != usize::MAX {
            end = Some(best[PARAGRAPH]);
            paragraph = true;
        } else {
            for level in (CLAUSE..=SENTENCE).rev() {
                if best[level] != usize::MAX && best_chars[level] >= min_fill {
                    end = Some(best[level]);
                    break;
                }
            }
            if end.is_none() && best[WORD] != usize::MAX {
                end = Some(best[WORD]);
            }
        }
        let end = end.unwrap_or_else(|| {
            // No break at all in the window: cut at a character, not before a combining mark
            // (unless backing off would undo the progress past the previous chunk).
            let mut e = pos;
            while e > start && is_combining_at(b, e) {
                e = prev_char(b, e);
            }
            if trim_end(b, start, e) <= min_end.max(start) {
                pos
            } else {
                e
            }
        });

        let chunk = start..trim_end(b, start, end);
        let ws_after = b[end..(end + RUN_LOOKAHEAD).min(len)]
            .iter()
            .take_while(|c| is_ws(**c))
            .count();
        if eof && end + ws_after == len {
            // Only whitespace follows: this was the last chunk.
            return Step { chunk, next: None };
        }
        let next = if paragraph || self.chunk_overlap == 0 {
            end
        } else {
            self.overlap_start(b, start, end, ws_after)
        };
        Step {
            chunk,
            next: Some(skip_ws(b, next)),
        }
    }

    /// Where the chunk after `start..end` begins: about `chunk_overlap` characters before `end`,
    /// at a sentence or word start, never at or before `start`.
    fn overlap_start(&self, b: &[u8], start: usize, end: usize, ws_after: usize) -> usize {
        // The next chunk must reach past this one: leave room in its window for the
        // whitespace after `end` and at least one character beyond it.
        let overlap = self
            .chunk_overlap
            .min(self.chunk_size.saturating_sub(ws_after + 1));
        // Walk back `overlap` characters from `end`, but stay after `start`.
        let first_after_start = start + utf8_width(b[start]);
        let mut target = end;
        let mut back = 0;
        while back < overlap && target > first_after_start {
            target = prev_char(b, target);
            back += 1;
        }
        if target >= end {
            return end;
        }
        let half = overlap / 2;
        let mut sentence = None;
        let mut word = None;
        let mut chars = 0usize;
        let mut p = target;
        while p < end {
            let c = b[p];
            if !is_ws(c) && p > start && (is_ws(b[p - 1]) || after_cjk_stop(b, start, p)) {
                if word.is_none() {
                    word = Some(p);
                }
                if chars <= half && starts_sentence(b, start, p) {
                    sentence = Some(p);
                    break;
                }
                if chars > half && word.is_some() {
                    break;
                }
            }
            p += if c < 0x80 { 1 } else { utf8_width(c) };
            chars += 1;
        }
        match sentence.or(word) {
            Some(p) => p,
            None => {
                let mut t = target;
                while t < end && is_combining_at(b, t) {
                    t += utf8_width(b[t]);
                }
                t
            }
        }
    }
}

/// A splitter fed with text piece by piece (as a file is read), keeping only a bounded window
/// (about four times `chunk_size` bytes plus the last piece) in memory. Produces exactly the
/// chunks [`Splitter::split`] gives for the concatenated text.
pub struct StreamSplitter<F> {
    splitter: Splitter,
    source: String,
    buf: String,
    start: usize,
    prev_end: usize,
    index: usize,
    chars: usize,
    emit: F,
}

impl<F, E> StreamSplitter<F>
where
    F: FnMut(Chunk) -> Result<(), E>,
{
    /// Starts a document named `source`; `emit` receives each chunk as soon as it is decided
    /// and may refuse (the receiver went away), which stops the splitting.
    pub fn new(splitter: Splitter, source: impl Into<String>, emit: F) -> Self {
        Self {
            splitter,
            source: source.into(),
            buf: String::new(),
            start: 0,
            prev_end: 0,
            index: 0,
            chars: 0,
            emit,
        }
    }

    /// Appends text and emits every chunk that no longer depends on text still to come.
    pub fn push(&mut self, text: &str) -> Result<(), E> {
        self.chars += text.chars().count();
        if self.index == 0 && self.buf.is_empty() {
            self.start = skip_ws(text.as_bytes(), 0);
        }
        self.buf.push_str(text);
        let horizon = self.splitter.horizon();
        while self.buf.len().saturating_sub(self.start) >= horizon {
            self.start = skip_ws(self.buf.as_bytes(), self.start);
            if self.buf.len() - self.start < horizon {
                break;
            }
            let step = self
                .splitter
                .step(self.buf.as_bytes(), self.start, self.prev_end, false);
            self.prev_end = step.chunk.end;
            self.emit_range(step.chunk)?;
            match step.next {
                Some(n) => self.start = n,
                None => break,
            }
        }
        if self.start > 0 && self.start >= self.buf.len() / 2 {
            self.buf.drain(..self.start);
            self.prev_end = self.prev_end.saturating_sub(self.start);
            self.start = 0;
        }
        Ok(())
    }

    /// Ends the document, emitting the remaining chunks; returns the number of characters seen.
    pub fn finish(mut self) -> Result<usize, E> {
        let b = self.buf.as_bytes();
        let mut start = skip_ws(b, self.start);
        let mut prev_end = self.prev_end;
        while start < b.len() {
            let step = self.splitter.step(b, start, prev_end, true);
            prev_end = step.chunk.end;
            let text = self.buf[step.chunk].to_owned();
            let chunk = Chunk {
                source: self.source.clone(),
                index: self.index,
                text,
            };
            self.index += 1;
            (self.emit)(chunk)?;
            match step.next {
                Some(n) => start = n,
                None => break,
            }
        }
        Ok(self.chars)
    }

    /// Chunks emitted so far.
    pub fn chunks_emitted(&self) -> usize {
        self.index
    }

    /// Bytes of text currently held (the window waiting for more text): stays around the
    /// last pushed piece plus a few times `chunk_size`, whatever the document's length.
    pub fn buffered_len(&self) -> usize {
        self.buf.len()
    }

    fn emit_range(&mut self, r: Range<usize>) -> Result<(), E> {
        let chunk = Chunk {
            source: self.source.clone(),
            index: self.index,
            text: self.buf[r].to_owned(),
        };
        self.index += 1;
        (self.emit)(chunk)
    }
}

#[inline]
fn is_ws(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0B | 0x0C)
}

#[inline]
fn utf8_width(lead: u8) -> usize {
    match lead {
        0x00..=0x7F => 1,
        0xC0..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xFF => 4,
        // A continuation byte never starts a character of a valid `str`; step by one.
        _ => 1,
    }
}

fn prev_char(b: &[u8], mut p: usize) -> usize {
    p = p.saturating_sub(1);
    while p > 0 && (b[p] & 0xC0) == 0x80 {
        p -= 1;
    }
    p
}

fn skip_ws(b: &[u8], mut p: usize) -> usize {
    while p < b.len() && is_ws(b[p]) {
        p += 1;
    }
    p
}

fn trim_end(b: &[u8], start: usize, mut end: usize) -> usize {
    while end > start && is_ws(b[end - 1]) {
        end -= 1;
    }
    end
}

fn decode_at(b: &[u8], p: usize) -> Option<char> {
    let w = utf8_width(*b.get(p)?);
    std::str::from_utf8(b.get(p..p + w)?).ok()?.chars().next()
}

/// Whether the character at `p` is a combining mark that must stay with the letter before it.
fn is_combining_at(b: &[u8], p: usize) -> bool {
    match b.get(p) {
        Some(&c) if c >= 0xCC => decode_at(b, p).is_some_and(|ch| {
            matches!(ch as u32,
                0x0300..=0x036F | 0x1AB0..=0x1AFF | 0x1DC0..=0x1DFF | 0x20D0..=0x20FF | 0xFE20..=0xFE2F)
        }),
        _ => false,
    }
}

/// `。` `！` `？` (full-width sentence stops, followed by no space in CJK text).
fn is_cjk_stop(b: &[u8], p: usize) -> bool {
    matches!(
        b.get(p..p + 3),
        Some([0xE3, 0x80, 0x82]) | Some([0xEF, 0xBC, 0x81]) | Some([0xEF, 0xBC, 0x9F])
    )
}

fn after_cjk_stop(b: &[u8], start: usize, p: usize) -> bool {
    p >= start + 3 && is_cjk_stop(b, p - 3)
}

/// Classifies the whitespace run starting at `p` (just after a non-whitespace character).
fn run_level(b: &[u8], start: usize, p: usize) -> usize {
    let mut newlines = 0;
    let limit = (p + RUN_LOOKAHEAD).min(b.len());
    let mut q = p;
    while q < limit && is_ws(b[q]) {
        if b[q] == b'\n' {
            newlines += 1;
            if newlines >= 3 {
                return PARAGRAPH;
            }
        }
        q += 1;
    }
    if newlines == 2 || ends_sentence(b, start, p) {
        SENTENCE
    } else if newlines == 1 {
        LINE
    } else if matches!(b[p - 1], b',' | b';' | b':') || ends_with_cjk_clause(b, start, p) {
        CLAUSE
    } else {
        WORD
    }
}

fn ends_with_cjk_clause(b: &[u8], start: usize, p: usize) -> bool {
    // `，` `；` `、`
    p >= start + 3
        && matches!(
            &b[p - 3..p],
            [0xEF, 0xBC, 0x8C] | [0xEF, 0xBC, 0x9B] | [0xE3, 0x80, 0x81]
        )
}

/// Whether the text before `p` (exclusive) ends a sentence: a terminator, possibly followed by
/// closing quotes or brackets.
fn ends_sentence(b: &[u8], start: usize, p: usize) -> bool {
    let mut q = p;
    while q > start {
        let prev = prev_char(b, q);
        let Some(ch) = decode_at(b, prev) else {
            return false;
        };
        match ch {
            '"' | '\'' | ')' | ']' | '}' | '»' | '”' | '’' | '」' | '』' => q = prev,
            '.' | '!' | '?' | '…' | '。' | '！' | '？' | '؟' | '।' => return true,
            _ => return false,
        }
    }
    false
}

/// Whether the word at `p` starts a sentence (the text before its whitespace ends one).
fn starts_sentence(b: &[u8], start: usize, p: usize) -> bool {
    if after_cjk_stop(b, start, p) {
        return true;
    }
    let mut q = p;
    let mut newlines = 0;
    while q > start && is_ws(b[q - 1]) {
        q -= 1;
        newlines += usize::from(b[q] == b'\n');
    }
    q > start && (newlines >= 2 || ends_sentence(b, start, q))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chars(s: &str) -> usize {
        s.chars().count()
    }

    #[test]
    fn refuses_parameters_that_cannot_progress() {
        assert!(Splitter::with_sizes(0, 0).is_err());
        assert!(Splitter::with_sizes(100, 100).is_err());
        assert!(Splitter::with_sizes(100, 99).is_ok());
    }

    #[test]
    fn short_text_is_one_trimmed_chunk() {
        let s = Splitter::with_sizes(1000, 200).unwrap();
        let chunks = s.split("a.txt", "  \n Xin chào thế giới.  \n");
        assert_eq!(chunks.len(), 1);
        assert_eq!(chunks[0].text, "Xin chào thế giới.");
        assert_eq!(chunks[0].source, "a.txt");
        assert!(s.split("a.txt", " \n\t ").is_empty());
        assert!(s.split("a.txt", "").is_empty());
    }

    #[test]
    fn prefers_the_paragraph_separator_then_sentences() {
        let s = Splitter::with_sizes(60, 10).unwrap();
        let text = "First part is here.\n\n\nSecond part has two sentences. It goes on and on until it is long.";
        let chunks = s.split("x", text);
        assert_eq!(chunks[0].text, "First part is here.");
        assert_eq!(chunks[1].text, "Second part has two sentences.");
        // The overlap starts at a word inside the last ten characters.
        assert_eq!(
            chunks[2].text,
            "sentences. It goes on and on until it is long."
        );
    }

    #[test]
    fn counts_characters_not_bytes() {
        // 30 Vietnamese words of 3-5 characters, many of them multi-byte.
        let text = "Tiếng Việt có dấu rất đẹp và phức tạp ".repeat(30);
        let s = Splitter::with_sizes(100, 20).unwrap();
        let chunks = s.split("vi", &text);
        for c in &chunks {
            assert!(chars(&c.text) <= 100, "{} chars", chars(&c.text));
        }
        for c in &chunks[..chunks.len() - 1] {
            assert!(chars(&c.text) >= 50, "{:?}", c.text);
        }
    }

    #[test]
    fn never_separates_a_combining_mark_from_its_letter() {
        // Decomposed Vietnamese without spaces forces character cuts.
        let text = "e\u{0302}\u{0301}".repeat(50);
        let s = Splitter::with_sizes(10, 3).unwrap();
        for c in s.split("nfd", &text) {
            assert!(!c.text.starts_with('\u{0302}') && !c.text.starts_with('\u{0301}'));
            assert!(chars(&c.text) <= 10);
        }
    }

    #[test]
    fn cjk_text_breaks_after_full_width_stops() {
        let text = "これは最初の文です。これは二番目の文です。これは三番目の文です。";
        let s = Splitter::with_sizes(22, 0).unwrap();
        let chunks = s.split("ja", text);
        assert_eq!(chunks[0].text, "これは最初の文です。これは二番目の文です。");
        assert_eq!(chunks[1].text, "これは三番目の文です。");
    }
}
