//! Loaders turn the bytes of one document into text, one module per format.
//!
//! The format is decided from the content first (magic bytes, zip members, markup) and the
//! name's extension or the HTTP content type second: a `.txt` that is really a PDF is read as a
//! PDF, and a `.pdf` that is not a PDF is reported as such instead of producing garbage.
//! Binary parsers run behind [`std::panic::catch_unwind`], so a corrupt file fails its source
//! and never the process.

mod csv;
mod docx;
mod html;
mod json;
mod ooxml;
mod pdf;
mod pptx;
mod xlsx;

use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};

use serde::Serialize;

use crate::encoding::{decode_all, DecodeStats};
use crate::error::ErrorKind;

pub(crate) use self::csv::CsvRenderer;
pub use self::html::html_to_text;
pub(crate) use self::ooxml::resolve_entity as resolve_xml_entity;

/// The loader that read a document; shown in reports and in `ragshift chunk`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LoaderKind {
    /// Plain text.
    Text,
    /// Markdown, kept as written (its markup is readable text).
    Markdown,
    /// HTML: the main text, without scripts, styles and navigation.
    Html,
    /// PDF: the text layer, pages joined.
    Pdf,
    /// Word (OOXML).
    Docx,
    /// Excel (OOXML): the text of every cell, sheet by sheet.
    Xlsx,
    /// PowerPoint (OOXML): the text of every slide.
    Pptx,
    /// CSV/TSV: each row as `column: value` lines.
    Csv,
    /// JSON: each value as a `path: value` line.
    Json,
}

impl LoaderKind {
    /// The lower-case name used in reports and JSON output.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Markdown => "markdown",
            Self::Html => "html",
            Self::Pdf => "pdf",
            Self::Docx => "docx",
            Self::Xlsx => "xlsx",
            Self::Pptx => "pptx",
            Self::Csv => "csv",
            Self::Json => "json",
        }
    }

    /// Formats that are read as a stream, block by block, instead of whole.
    pub fn streams(self) -> bool {
        matches!(self, Self::Text | Self::Markdown | Self::Csv)
    }
}

impl fmt::Display for LoaderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a loader produced from one document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    /// The loader used.
    pub loader: LoaderKind,
    /// The document's text, UTF-8, ready to split.
    pub text: String,
    /// Things the owner should know that did not stop loading (encoding conversions,
    /// replaced bytes, skipped parts).
    pub warnings: Vec<String>,
}

/// What the first bytes and the name say a document is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detected {
    /// A format with a loader.
    Kind(LoaderKind),
    /// A ZIP container whose members decide between DOCX, XLSX and PPTX.
    Zip,
    /// A sitemap or sitemap index (only meaningful for URL sources).
    Sitemap,
}

/// Hints besides the content: the file name or URL path, and the HTTP content type.
#[derive(Debug, Clone, Copy, Default)]
pub struct Hint<'a> {
    /// File name, object key or URL (only its extension is used).
    pub name: &'a str,
    /// The `Content-Type` of an HTTP response, if any.
    pub content_type: Option<&'a str>,
}

impl<'a> Hint<'a> {
    /// A hint from a name alone.
    pub fn name(name: &'a str) -> Self {
        Self {
            name,
            content_type: None,
        }
    }

    /// The lower-case extension of the name (ignoring a URL's query and fragment).
    fn extension(&self) -> Option<String> {
        let path = self.name.split(['?', '#']).next().unwrap_or_default();
        let file = path.rsplit(['/', '\\']).next().unwrap_or_default();
        let (_, ext) = file.rsplit_once('.')?;
        Some(ext.to_ascii_lowercase())
    }

    fn mime(&self) -> Option<String> {
        let ct = self.content_type?;
        Some(ct.split(';').next()?.trim().to_ascii_lowercase())
    }
}

/// Decides the format of a document from its first bytes (at least the first 8 KiB when
/// available) and its hints.
pub fn detect(hint: &Hint<'_>, head: &[u8]) -> Result<Detected, ErrorKind> {
    if head.is_empty() {
        return Err(ErrorKind::Empty);
    }
    let ext = hint.extension();
    let ext = ext.as_deref();
    let mime = hint.mime();
    let mime = mime.as_deref();

    // Content first: binary signatures.
    if find(&head[..head.len().min(1024)], b"%PDF-").is_some() {
        return Ok(Detected::Kind(LoaderKind::Pdf));
    }
    if head.starts_with(b"PK\x03\x04") {
        return Ok(Detected::Zip);
    }
    if let Some(what) = binary_signature(head) {
        return Err(ErrorKind::Unsupported {
            what: what.to_owned(),
        });
    }
    // A name that promises a binary format the content does not have.
    if let Some(format) = ext.filter(|e| matches!(*e, "pdf" | "docx" | "xlsx" | "pptx")) {
        return Err(ErrorKind::corrupt(
            format,
            format!(
                "the file is named .{format} but does not start like one (first bytes: {})",
                preview_bytes(head)
            ),
        ));
    }
    if looks_binary(head) {
        return Err(ErrorKind::Unsupported {
            what: format!(
                "binary content that is not a supported document (first bytes: {}); supported: \
                 pdf, docx, xlsx, pptx, html, md, txt, csv, json",
                preview_bytes(head)
            ),
        });
    }

    // Text formats: the name and content type decide, the content breaks ties.
    let by_name = match ext {
        Some("md" | "markdown" | "mdx") => Some(LoaderKind::Markdown),
        Some("csv" | "tsv") => Some(LoaderKind::Csv),
        Some("json") => Some(LoaderKind::Json),
        Some("html" | "htm" | "xhtml" | "shtml") => Some(LoaderKind::Html),
        Some("txt" | "text" | "log") => Some(LoaderKind::Text),
        _ => None,
    };
    let by_mime = match mime {
        Some("text/html" | "application/xhtml+xml") => Some(LoaderKind::Html),
        Some("text/markdown" | "text/x-markdown") => Some(LoaderKind::Markdown),
        Some("text/csv" | "text/tab-separated-values") => Some(LoaderKind::Csv),
        Some("application/json") => Some(LoaderKind::Json),
        _ => None,
    };
    let text_head = String::from_utf8_lossy(&head[..head.len().min(4096)]);
    let sniffed = sniff_text(&text_head);
    if sniffed == Some(Detected::Sitemap) && by_name != Some(LoaderKind::Text) {
        return Ok(Detected::Sitemap);
    }
    let kind = match (by_name, by_mime, sniffed) {
        (Some(k), _, _) => k,
        (None, Some(k), _) => k,
        (None, None, Some(Detected::Kind(k))) => k,
        _ => LoaderKind::Text,
    };
    Ok(Detected::Kind(kind))
}

fn sniff_text(head: &str) -> Option<Detected> {
    let t = head.trim_start_matches('\u{feff}').trim_start();
    let lower: String = t
        .chars()
        .take(1024)
        .collect::<String>()
        .to_ascii_lowercase();
    if lower.starts_with("<?xml") && (lower.contains("<urlset") || lower.contains("<sitemapindex"))
        || lower.starts_with("<urlset")
        || lower.starts_with("<sitemapindex")
    {
        return Some(Detected::Sitemap);
    }
    if lower.starts_with("<!doctype html")
        || lower.starts_with("<html")
        || lower.contains("<head")
        || lower.contains("<body")
    {
        return Some(Detected::Kind(LoaderKind::Html));
    }
    if lower.starts_with('{') || lower.starts_with('[') {
        return Some(Detected::Kind(LoaderKind::Json));
    }
    None
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn binary_signature(head: &[u8]) -> Option<&'static str> {
    const SIGS: &[(&[u8], &str)] = &[
        (
            b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1",
            "a legacy Office file (.doc/.xls/.ppt); save it as .docx/.xlsx/.pptx and upload it again",
        ),
        (b"\x89PNG", "an image (PNG); images carry no text layer ragshift can read"),
        (b"\xFF\xD8\xFF", "an image (JPEG); images carry no text layer ragshift can read"),
        (b"GIF8", "an image (GIF); images carry no text layer ragshift can read"),
        (b"\x1F\x8B", "a gzip archive; upload the documents it contains instead"),
        (b"Rar!", "a RAR archive; upload the documents it contains instead"),
        (b"7z\xBC\xAF", "a 7-Zip archive; upload the documents it contains instead"),
        (b"{\\rtf", "an RTF document; save it as .docx and upload it again"),
    ];
    SIGS.iter()
        .find(|(sig, _)| head.starts_with(sig))
        .map(|(_, what)| *what)
}

/// NUL bytes outside a UTF-16 BOM'd text mean binary.
fn looks_binary(head: &[u8]) -> bool {
    if encoding_rs::Encoding::for_bom(head).is_some() {
        return false;
    }
    head.iter().take(8192).any(|b| *b == 0)
}

fn preview_bytes(head: &[u8]) -> String {
    head.iter()
        .take(8)
        .map(|b| {
            if b.is_ascii_graphic() {
                (*b as char).to_string()
            } else {
                format!("\\x{b:02X}")
            }
        })
        .collect()
}

/// Loads a whole document held in memory.
pub fn load(hint: &Hint<'_>, bytes: &[u8]) -> Result<Loaded, ErrorKind> {
    let head = &bytes[..bytes.len().min(8192)];
    let kind = match detect(hint, head)? {
        Detected::Kind(k) => k,
        Detected::Zip => ooxml::detect_zip(bytes)?,
        Detected::Sitemap => LoaderKind::Text,
    };
    load_as(kind, bytes)
}

/// Loads bytes with a known loader.
pub fn load_as(kind: LoaderKind, bytes: &[u8]) -> Result<Loaded, ErrorKind> {
    let mut warnings = Vec::new();
    let text = match kind {
        LoaderKind::Text | LoaderKind::Markdown => decoded(bytes, &mut warnings),
        LoaderKind::Csv => {
            let (text, stats) = csv::load(bytes)?;
            warnings.extend(stats.warning());
            text
        }
        LoaderKind::Json => json::load(&decoded(bytes, &mut warnings))?,
        LoaderKind::Html => guarded("html", || {
            Ok(html::html_to_text(&decoded(bytes, &mut warnings)))
        })?,
        LoaderKind::Pdf => guarded("pdf", || pdf::load(bytes))?,
        LoaderKind::Docx => guarded("docx", || docx::load(bytes))?,
        LoaderKind::Xlsx => guarded("xlsx", || xlsx::load(bytes))?,
        LoaderKind::Pptx => guarded("pptx", || pptx::load(bytes))?,
    };
    if text.trim().is_empty() {
        return Err(ErrorKind::NoText {
            format: kind.as_str().to_owned(),
            hint: match kind {
                LoaderKind::Pdf => " (a scanned PDF has no text layer; run OCR on it first)".into(),
                _ => String::new(),
            },
        });
    }
    Ok(Loaded {
        loader: kind,
        text,
        warnings,
    })
}

fn decoded(bytes: &[u8], warnings: &mut Vec<String>) -> String {
    let (text, stats): (String, DecodeStats) = decode_all(bytes);
    warnings.extend(stats.warning());
    text
}

/// Runs a parser that might panic on hostile input, turning a panic into a corrupt-document
/// error.
fn guarded<T>(format: &str, f: impl FnOnce() -> Result<T, ErrorKind>) -> Result<T, ErrorKind> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(panic) => {
            let msg = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "the parser crashed".to_owned());
            Err(ErrorKind::corrupt(format, format!("parser failure: {msg}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(name: &str, ct: Option<&str>, head: &[u8]) -> Result<Detected, ErrorKind> {
        detect(
            &Hint {
                name,
                content_type: ct,
            },
            head,
        )
    }

    #[test]
    fn content_beats_the_extension() {
        assert_eq!(
            kind("report.txt", None, b"%PDF-1.7\n..."),
            Ok(Detected::Kind(LoaderKind::Pdf))
        );
        assert_eq!(kind("x.bin", None, b"PK\x03\x04rest"), Ok(Detected::Zip));
        assert!(matches!(
            kind("fake.pdf", None, b"hello"),
            Err(ErrorKind::Corrupt { .. })
        ));
        assert!(matches!(
            kind("old.doc", None, b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1...."),
            Err(ErrorKind::Unsupported { .. })
        ));
        assert!(matches!(
            kind("blob", None, b"\x00\x01\x02garbage"),
            Err(ErrorKind::Unsupported { .. })
        ));
        assert_eq!(kind("empty.txt", None, b""), Err(ErrorKind::Empty));
    }

    #[test]
    fn text_formats_follow_name_then_type_then_content() {
        let k = |n, ct, h: &[u8]| kind(n, ct, h).unwrap();
        assert_eq!(
            k("a.md", None, b"# T"),
            Detected::Kind(LoaderKind::Markdown)
        );
        assert_eq!(k("a.csv", None, b"a,b"), Detected::Kind(LoaderKind::Csv));
        assert_eq!(
            k(
                "https://x/page?id=1",
                Some("text/html; charset=utf-8"),
                b"hi"
            ),
            Detected::Kind(LoaderKind::Html)
        );
        assert_eq!(
            k("https://x/page", None, b"  <!DOCTYPE html><html>"),
            Detected::Kind(LoaderKind::Html)
        );
        assert_eq!(
            k("data", None, b"{\"a\": 1}"),
            Detected::Kind(LoaderKind::Json)
        );
        assert_eq!(
            k("notes.txt", None, b"<html> in a text file"),
            Detected::Kind(LoaderKind::Text)
        );
        assert_eq!(
            k(
                "https://x/sitemap.xml",
                Some("application/xml"),
                b"<?xml version=\"1.0\"?><urlset>"
            ),
            Detected::Sitemap
        );
        assert_eq!(
            k("README", None, b"plain words"),
            Detected::Kind(LoaderKind::Text)
        );
    }

    #[test]
    fn panics_become_corrupt_errors() {
        let r: Result<(), _> = guarded("pdf", || panic!("boom"));
        assert_eq!(r, Err(ErrorKind::corrupt("pdf", "parser failure: boom")));
    }
}
