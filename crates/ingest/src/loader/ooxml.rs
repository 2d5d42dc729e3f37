//! What DOCX, XLSX and PPTX share: a ZIP container of XML parts. Opening the container,
//! telling the three apart by their members, reading a part with a size cap (a ZIP bomb must
//! not exhaust memory), and walking WordprocessingML/DrawingML text runs.

use std::io::{Cursor, Read};

use quick_xml::events::Event;
use quick_xml::Reader;
use zip::ZipArchive;

use super::LoaderKind;
use crate::error::ErrorKind;

/// Largest decompressed XML part read (a ZIP bomb guard).
const MAX_PART_BYTES: u64 = 256 * 1024 * 1024;

pub(super) type Archive<'a> = ZipArchive<Cursor<&'a [u8]>>;

/// Opens the container, naming `format` in the error.
pub(super) fn open<'a>(bytes: &'a [u8], format: &str) -> Result<Archive<'a>, ErrorKind> {
    ZipArchive::new(Cursor::new(bytes))
        .map_err(|e| ErrorKind::corrupt(format, format!("not a valid ZIP container ({e})")))
}

/// Tells DOCX, XLSX and PPTX apart by their main part.
pub(super) fn detect_zip(bytes: &[u8]) -> Result<LoaderKind, ErrorKind> {
    let archive = open(bytes, "zip")?;
    let names: Vec<String> = archive
        .file_names()
        .filter_map(|n| n.ok().map(|n| n.into_owned()))
        .collect();
    let has = |n: &str| names.iter().any(|x| x == n);
    if has("word/document.xml") {
        Ok(LoaderKind::Docx)
    } else if has("xl/workbook.xml") {
        Ok(LoaderKind::Xlsx)
    } else if has("ppt/presentation.xml") {
        Ok(LoaderKind::Pptx)
    } else if names.iter().any(|n| n.ends_with(".xml")) && has("content.xml") {
        Err(ErrorKind::Unsupported {
            what: "an OpenDocument file (.odt/.ods/.odp); save it as .docx/.xlsx/.pptx".into(),
        })
    } else {
        Err(ErrorKind::Unsupported {
            what: "a ZIP archive that is not a Word, Excel or PowerPoint document; upload the \
                   documents it contains instead"
                .into(),
        })
    }
}

/// Names of the container's members.
pub(super) fn member_names(archive: &Archive<'_>) -> Vec<String> {
    archive
        .file_names()
        .filter_map(|n| n.ok().map(|n| n.into_owned()))
        .collect()
}

/// Reads one XML part as UTF-8, refusing parts that inflate beyond the cap.
pub(super) fn read_part(
    archive: &mut Archive<'_>,
    name: &str,
    format: &str,
) -> Result<String, ErrorKind> {
    let file = archive
        .by_name(name)
        .map_err(|e| ErrorKind::corrupt(format, format!("missing part {name} ({e})")))?;
    let mut buf = Vec::new();
    file.take(MAX_PART_BYTES + 1)
        .read_to_end(&mut buf)
        .map_err(|e| ErrorKind::corrupt(format, format!("cannot inflate {name} ({e})")))?;
    if buf.len() as u64 > MAX_PART_BYTES {
        return Err(ErrorKind::TooLarge {
            limit: MAX_PART_BYTES,
        });
    }
    String::from_utf8(buf)
        .map_err(|e| ErrorKind::corrupt(format, format!("{name} is not UTF-8 XML ({e})")))
}

/// How element names of one XML vocabulary map to text layout.
pub(super) struct TextRules {
    /// Elements whose character data is text (`t`).
    pub text: &'static [&'static str],
    /// Elements ending a paragraph (`p`).
    pub paragraph: &'static [&'static str],
    /// Self-closing tab elements.
    pub tab: &'static [&'static str],
    /// Self-closing line breaks.
    pub line_break: &'static [&'static str],
    /// Table cells (a tab after each) and rows (a line break after each).
    pub cell: &'static [&'static str],
    /// Table rows.
    pub row: &'static [&'static str],
    /// What separates paragraphs outside tables.
    pub paragraph_sep: &'static str,
}

/// Extracts the text of an XML part following `rules`.
pub(super) fn xml_text(xml: &str, rules: &TextRules, format: &str) -> Result<String, ErrorKind> {
    let mut reader = Reader::from_str(xml);
    let mut out = String::new();
    let mut in_text = 0usize;
    let mut in_cell = 0usize;
    loop {
        let event = reader
            .read_event()
            .map_err(|e| ErrorKind::corrupt(format, format!("malformed XML ({e})")))?;
        match event {
            Event::Start(e) => {
                let name = e.local_name();
                let name = name.as_ref();
                if rules.text.contains(&name) {
                    in_text += 1;
                } else if rules.cell.contains(&name) {
                    in_cell += 1;
                }
            }
            Event::Empty(e) => {
                let name = e.local_name();
                let name = name.as_ref();
                if rules.tab.contains(&name) {
                    out.push('\t');
                } else if rules.line_break.contains(&name) {
                    out.push('\n');
                }
            }
            Event::End(e) => {
                let name = e.local_name();
                let name = name.as_ref();
                if rules.text.contains(&name) {
                    in_text = in_text.saturating_sub(1);
                } else if rules.paragraph.contains(&name) {
                    end_paragraph(
                        &mut out,
                        if in_cell > 0 {
                            " "
                        } else {
                            rules.paragraph_sep
                        },
                    );
                } else if rules.cell.contains(&name) {
                    in_cell = in_cell.saturating_sub(1);
                    trim_trailing_spaces(&mut out);
                    out.push('\t');
                } else if rules.row.contains(&name) {
                    trim_trailing_spaces(&mut out);
                    if out.ends_with('\t') {
                        out.pop();
                    }
                    out.push('\n');
                }
            }
            Event::Text(t) if in_text > 0 => out.push_str(&t.xml10_content()),
            Event::CData(t) if in_text > 0 => out.push_str(&t.xml10_content()),
            Event::GeneralRef(r) if in_text > 0 => {
                if let Some(c) = resolve_entity(&r) {
                    out.push(c);
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(out.trim().to_owned())
}

fn end_paragraph(out: &mut String, sep: &str) {
    if out.is_empty() || out.ends_with(sep) || out.ends_with('\t') {
        return;
    }
    trim_trailing_spaces(out);
    out.push_str(sep);
}

fn trim_trailing_spaces(out: &mut String) {
    while out.ends_with(' ') {
        out.pop();
    }
}

/// Resolves `&amp;`-style and `&#...;` references.
pub(crate) fn resolve_entity(r: &quick_xml::events::BytesRef<'_>) -> Option<char> {
    if let Ok(Some(c)) = r.resolve_char_ref() {
        return Some(c);
    }
    match r.xml10_content().as_ref() {
        "amp" => Some('&'),
        "lt" => Some('<'),
        "gt" => Some('>'),
        "quot" => Some('"'),
        "apos" => Some('\''),
        _ => None,
    }
}
