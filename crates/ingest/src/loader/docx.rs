//! Word documents: the text of `word/document.xml`, paragraph by paragraph, tables row by row
//! with cells separated by tabs.

use super::ooxml::{self, TextRules};
use crate::error::ErrorKind;

const RULES: TextRules = TextRules {
    text: &["t"],
    paragraph: &["p"],
    tab: &["tab"],
    line_break: &["br", "cr"],
    cell: &["tc"],
    row: &["tr"],
    paragraph_sep: "\n\n",
};

/// Extracts the body text of a DOCX file.
pub(super) fn load(bytes: &[u8]) -> Result<String, ErrorKind> {
    let mut archive = ooxml::open(bytes, "docx")?;
    let xml = ooxml::read_part(&mut archive, "word/document.xml", "docx")?;
    ooxml::xml_text(&xml, &RULES, "docx")
}
