//! Sitemaps (the original platform raised NotImplementedError for them): a `<urlset>` lists
//! pages, a `<sitemapindex>` lists child sitemaps; either may be gzipped. Every page becomes a
//! source of its own. A per-bot page cap and a cap on child sitemaps bound the crawl; what the
//! caps cut off is counted and reported, never dropped silently.

use std::collections::HashSet;
use std::io::Read;

use bytes::Bytes;
use quick_xml::events::Event;
use quick_xml::Reader;
use url::Url;

use crate::error::{ErrorKind, SourceError};
use crate::fetch::Fetcher;

/// What one sitemap document lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sitemap {
    /// A `<urlset>`: page URLs.
    Pages(Vec<String>),
    /// A `<sitemapindex>`: child sitemap URLs.
    Index(Vec<String>),
}

/// The pages a sitemap (and its children) lead to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expansion {
    /// Page URLs, deduplicated, in sitemap order, at most the page cap.
    pub pages: Vec<String>,
    /// Pages left out because of the page cap.
    pub pages_over_cap: usize,
    /// Child sitemaps left out because of the child cap.
    pub children_over_cap: usize,
    /// Child sitemaps that could not be fetched or parsed (each is a failed source).
    pub failed_children: Vec<SourceError>,
}

impl Expansion {
    /// Notes for the report when a cap cut something off.
    pub fn notes(&self, sitemap: &str) -> Vec<String> {
        let mut notes = Vec::new();
        if self.pages_over_cap > 0 {
            notes.push(format!(
                "{sitemap}: {} page(s) beyond the sitemap page cap were not loaded; raise the cap to include them",
                self.pages_over_cap
            ));
        }
        if self.children_over_cap > 0 {
            notes.push(format!(
                "{sitemap}: {} child sitemap(s) beyond the child cap were not read",
                self.children_over_cap
            ));
        }
        notes
    }
}

/// Whether the bytes are a gzip stream.
fn is_gzip(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0x1F, 0x8B])
}

/// Parses one sitemap document (gzipped or not), inflating at most `max_bytes`.
pub fn parse(bytes: &[u8], base: &str, max_bytes: u64) -> Result<Sitemap, ErrorKind> {
    let inflated;
    let xml_bytes = if is_gzip(bytes) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(bytes)
            .take(max_bytes + 1)
            .read_to_end(&mut out)
            .map_err(|e| ErrorKind::Sitemap {
                detail: format!("cannot gunzip ({e})"),
            })?;
        if out.len() as u64 > max_bytes {
            return Err(ErrorKind::TooLarge { limit: max_bytes });
        }
        inflated = out;
        &inflated[..]
    } else {
        bytes
    };
    let xml = String::from_utf8_lossy(xml_bytes);
    let base = Url::parse(base).ok();
    let mut reader = Reader::from_str(&xml);
    let mut root: Option<bool> = None; // Some(true) = index
    let mut in_loc = false;
    let mut loc = String::new();
    let mut locs = Vec::new();
    loop {
        let event = reader.read_event().map_err(|e| ErrorKind::Sitemap {
            detail: format!("malformed XML ({e})"),
        })?;
        match event {
            Event::Start(e) => match e.local_name().as_ref() {
                "urlset" if root.is_none() => root = Some(false),
                "sitemapindex" if root.is_none() => root = Some(true),
                "loc" => {
                    in_loc = true;
                    loc.clear();
                }
                _ => {}
            },
            Event::End(e) if e.local_name().as_ref() == "loc" => {
                in_loc = false;
                let raw = loc.trim();
                let resolved = match &base {
                    Some(b) => b.join(raw).map(|u| u.to_string()).ok(),
                    None => Url::parse(raw).map(|u| u.to_string()).ok(),
                };
                if let Some(u) = resolved {
                    locs.push(u);
                }
            }
            Event::Text(t) if in_loc => loc.push_str(&t.xml10_content()),
            Event::CData(t) if in_loc => loc.push_str(&t.xml10_content()),
            Event::GeneralRef(r) if in_loc => {
                if let Some(c) = crate::loader::resolve_xml_entity(&r) {
                    loc.push(c);
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    match root {
        Some(true) => Ok(Sitemap::Index(locs)),
        Some(false) => Ok(Sitemap::Pages(locs)),
        None => Err(ErrorKind::Sitemap {
            detail: "no <urlset> or <sitemapindex> element".into(),
        }),
    }
}

/// Expands the sitemap at `url` into its pages. `first` is its body when the caller already
/// fetched it (a URL source that turned out to be a sitemap).
pub async fn expand(
    fetcher: &Fetcher,
    url: &str,
    first: Option<Bytes>,
    page_cap: usize,
    max_children: usize,
    max_bytes: u64,
) -> Result<Expansion, ErrorKind> {
    let body = match first {
        Some(b) => b,
        None => fetcher.get(url).await?.bytes,
    };
    let mut exp = Expansion::default();
    let mut seen = HashSet::new();
    match parse(&body, url, max_bytes)? {
        Sitemap::Pages(pages) => add_pages(&mut exp, &mut seen, pages, page_cap),
        Sitemap::Index(children) => {
            let mut visited = HashSet::from([url.to_owned()]);
            for (i, child) in children.into_iter().enumerate() {
                if i >= max_children {
                    exp.children_over_cap += 1;
                    continue;
                }
                if !visited.insert(child.clone()) {
                    continue;
                }
                let parsed = match fetcher.get(&child).await {
                    Ok(f) => parse(&f.bytes, &child, max_bytes),
                    Err(e) => Err(e),
                };
                match parsed {
                    Ok(Sitemap::Pages(pages)) => add_pages(&mut exp, &mut seen, pages, page_cap),
                    Ok(Sitemap::Index(_)) => exp.failed_children.push(SourceError::new(
                        child,
                        ErrorKind::Sitemap {
                            detail: "a sitemap index inside a sitemap index is not followed".into(),
                        },
                    )),
                    Err(kind) => exp.failed_children.push(SourceError::new(child, kind)),
                }
            }
        }
    }
    if exp.pages.is_empty() && exp.failed_children.is_empty() {
        return Err(ErrorKind::Sitemap {
            detail: "it lists no page".into(),
        });
    }
    Ok(exp)
}

fn add_pages(exp: &mut Expansion, seen: &mut HashSet<String>, pages: Vec<String>, cap: usize) {
    for p in pages {
        if !seen.insert(p.clone()) {
            continue;
        }
        if exp.pages.len() < cap {
            exp.pages.push(p);
        } else {
            exp.pages_over_cap += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urlsets_and_indexes_with_namespaces_and_entities() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
  <url><loc> https://example.com/a?x=1&amp;y=2 </loc><lastmod>2024-01-01</lastmod></url>
  <url><loc>/relative</loc></url>
</urlset>"#;
        assert_eq!(
            parse(xml.as_bytes(), "https://example.com/sitemap.xml", 1 << 20).unwrap(),
            Sitemap::Pages(vec![
                "https://example.com/a?x=1&y=2".into(),
                "https://example.com/relative".into()
            ])
        );
        let idx = r#"<sm:sitemapindex xmlns:sm="http://www.sitemaps.org/schemas/sitemap/0.9">
            <sm:sitemap><sm:loc>https://example.com/s1.xml.gz</sm:loc></sm:sitemap></sm:sitemapindex>"#;
        assert_eq!(
            parse(idx.as_bytes(), "https://example.com/", 1 << 20).unwrap(),
            Sitemap::Index(vec!["https://example.com/s1.xml.gz".into()])
        );
        assert!(parse(b"<html></html>", "https://example.com/", 1 << 20).is_err());
    }

    #[test]
    fn gzip_bombs_are_refused() {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let body = format!("<urlset>{}</urlset>", " ".repeat(1 << 20));
        enc.write_all(body.as_bytes()).unwrap();
        let gz = enc.finish().unwrap();
        assert!(matches!(
            parse(&gz, "https://example.com/", 1024),
            Err(ErrorKind::TooLarge { limit: 1024 })
        ));
        assert!(matches!(
            parse(&gz, "https://example.com/", 2 << 20),
            Ok(Sitemap::Pages(p)) if p.is_empty()
        ));
    }
}
