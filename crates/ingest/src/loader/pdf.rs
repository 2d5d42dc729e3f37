//! PDF documents: the text layer, read with `pdf-extract` (built on `lopdf`, pure Rust, decodes
//! font encodings and ToUnicode maps, which matters for Vietnamese). Pages are joined with a
//! blank line. `pdf-extract` is known to panic on some malformed files, so the caller runs
//! this behind `catch_unwind` (see `loader::guarded`).
//!
//! The platform's `enable_partition_pdf` (layout-aware partitioning with a vision model) is
//! not reproduced: the text layer is what both modes embed for text PDFs.

use crate::error::ErrorKind;

/// Extracts the text of every page.
pub(super) fn load(bytes: &[u8]) -> Result<String, ErrorKind> {
    let pages = pdf_extract::extract_text_from_mem_by_pages(bytes)
        .map_err(|e| ErrorKind::corrupt("pdf", e))?;
    let pages: Vec<String> = pages
        .iter()
        .map(|p| tidy_page(p))
        .filter(|p| !p.is_empty())
        .collect();
    Ok(pages.join("\n\n"))
}

/// Trims each line and collapses the runs of blank lines `pdf-extract` leaves between text
/// objects, keeping single blank lines as paragraph breaks.
fn tidy_page(page: &str) -> String {
    let mut out = String::with_capacity(page.len());
    let mut blank = 0;
    for line in page.lines() {
        let line = line.trim();
        if line.is_empty() {
            blank += 1;
            continue;
        }
        if !out.is_empty() {
            out.push_str(if blank > 0 { "\n\n" } else { "\n" });
        }
        blank = 0;
        out.push_str(line);
    }
    out
}
