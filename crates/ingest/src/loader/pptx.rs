//! PowerPoint decks: the text of every slide in slide order (`ppt/slides/slideN.xml`, sorted
//! by N), slides separated by the platform's paragraph separator so that a chunk does not
//! straddle two slides unless a slide is tiny.

use super::ooxml::{self, TextRules};
use crate::error::ErrorKind;

const RULES: TextRules = TextRules {
    text: &["t"],
    paragraph: &["p"],
    tab: &["tab"],
    line_break: &["br"],
    cell: &["tc"],
    row: &["tr"],
    paragraph_sep: "\n",
};

/// Extracts the text of every slide of a PPTX file.
pub(super) fn load(bytes: &[u8]) -> Result<String, ErrorKind> {
    let mut archive = ooxml::open(bytes, "pptx")?;
    let mut slides: Vec<(u32, String)> = ooxml::member_names(&archive)
        .into_iter()
        .filter_map(|name| {
            let n = name
                .strip_prefix("ppt/slides/slide")?
                .strip_suffix(".xml")?
                .parse()
                .ok()?;
            Some((n, name))
        })
        .collect();
    if slides.is_empty() {
        return Err(ErrorKind::corrupt("pptx", "the presentation has no slides"));
    }
    slides.sort();
    let mut texts = Vec::with_capacity(slides.len());
    for (_, name) in slides {
        let xml = ooxml::read_part(&mut archive, &name, "pptx")?;
        let text = ooxml::xml_text(&xml, &RULES, "pptx")?;
        if !text.is_empty() {
            texts.push(text);
        }
    }
    Ok(texts.join("\n\n\n"))
}
