//! HTML pages: the main text, without scripts, styles, forms and the navigation boilerplate
//! that would otherwise repeat in every chunk of every page of a site.
//!
//! Parsed with `scraper` (html5ever, the browser-grade HTML5 parser). The walk starts at
//! `<main>`, `[role=main]` or a lone `<article>` when the page has one, else at `<body>`, where
//! the page chrome (`header`, `footer`, `nav`, `aside`) is dropped too. Block elements become
//! line breaks, paragraphs and headings blank lines, table cells tabs.

use ego_tree::NodeRef;
use scraper::{Html, Node, Selector};

/// Elements whose content is never text for a reader.
const SKIP: &[&str] = &[
    "script", "style", "noscript", "template", "svg", "canvas", "iframe", "object", "embed",
    "form", "button", "select", "option", "textarea", "input", "nav", "head", "title", "meta",
    "link", "dialog", "menu",
];
/// Page chrome, dropped when walking a whole `<body>`.
const CHROME: &[&str] = &["header", "footer", "aside"];
/// ARIA roles of boilerplate regions.
const SKIP_ROLES: &[&str] = &[
    "navigation",
    "banner",
    "contentinfo",
    "complementary",
    "search",
    "menu",
    "menubar",
    "dialog",
];
/// Elements separated from their surroundings by a blank line.
const PARAGRAPH: &[&str] = &[
    "p",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "pre",
    "blockquote",
    "table",
    "ul",
    "ol",
    "dl",
    "figure",
    "section",
    "article",
    "main",
    "hr",
];
/// Elements on a line of their own.
const LINE: &[&str] = &[
    "div",
    "li",
    "tr",
    "dt",
    "dd",
    "figcaption",
    "caption",
    "address",
    "details",
    "summary",
    "header",
    "footer",
    "br",
];

/// Extracts the readable main text of an HTML document.
pub fn html_to_text(html: &str) -> String {
    let doc = Html::parse_document(html);
    let pick = |css: &str| -> Option<Vec<NodeRef<'_, Node>>> {
        let sel = Selector::parse(css).ok()?;
        let found: Vec<_> = doc.select(&sel).map(|e| *e).collect();
        (!found.is_empty()).then_some(found)
    };
    let (roots, in_body) = if let Some(main) = pick("main, [role=main]") {
        (main, false)
    } else if let Some(articles) = pick("article").filter(|a| a.len() == 1) {
        (articles, false)
    } else if let Some(body) = pick("body") {
        (body, true)
    } else {
        (vec![*doc.root_element()], true)
    };
    let mut out = Out::default();
    for root in roots {
        walk(root, &mut out, in_body, false);
        out.brk(2);
    }
    out.finish()
}

#[derive(Default)]
struct Out {
    text: String,
    pending_break: u8,
    pending_space: bool,
}

impl Out {
    fn brk(&mut self, n: u8) {
        self.pending_break = self.pending_break.max(n);
    }

    fn push_text(&mut self, s: &str, pre: bool) {
        if pre {
            self.flush_break();
            self.text.push_str(s);
            return;
        }
        let mut words = s.split_ascii_whitespace().peekable();
        if words.peek().is_none() {
            if !s.is_empty() {
                self.pending_space = true;
            }
            return;
        }
        if s.starts_with(|c: char| c.is_ascii_whitespace()) {
            self.pending_space = true;
        }
        for w in words {
            if self.pending_break > 0 {
                self.flush_break();
            } else if self.pending_space
                && !self.text.is_empty()
                && !self.text.ends_with(['\n', '\t', ' '])
            {
                self.text.push(' ');
            }
            self.pending_space = true;
            self.text.push_str(w);
        }
        self.pending_space = s.ends_with(|c: char| c.is_ascii_whitespace());
    }

    fn flush_break(&mut self) {
        if self.pending_break > 0 && !self.text.is_empty() {
            while self.text.ends_with([' ', '\t']) {
                self.text.pop();
            }
            let have = self.text.chars().rev().take_while(|c| *c == '\n').count() as u8;
            for _ in have..self.pending_break {
                self.text.push('\n');
            }
        }
        self.pending_break = 0;
        self.pending_space = false;
    }

    fn cell(&mut self) {
        if !self.text.is_empty() && !self.text.ends_with('\n') {
            self.text.push('\t');
        }
        self.pending_space = false;
    }

    fn finish(self) -> String {
        self.text.trim().to_owned()
    }
}

fn walk(node: NodeRef<'_, Node>, out: &mut Out, in_body: bool, pre: bool) {
    match node.value() {
        Node::Text(t) => out.push_text(t, pre),
        Node::Element(el) => {
            let name = el.name();
            if SKIP.contains(&name)
                || (in_body && CHROME.contains(&name))
                || el.attr("hidden").is_some()
                || el.attr("aria-hidden") == Some("true")
                || el.attr("role").is_some_and(|r| SKIP_ROLES.contains(&r))
            {
                return;
            }
            let level = if PARAGRAPH.contains(&name) {
                2
            } else if LINE.contains(&name) {
                1
            } else {
                0
            };
            if level > 0 {
                out.brk(level);
            }
            if name == "img" {
                if let Some(alt) = el.attr("alt").filter(|a| !a.trim().is_empty()) {
                    out.push_text(&format!(" {} ", alt.trim()), false);
                }
            }
            let pre = pre || name == "pre" || name == "textarea";
            for child in node.children() {
                walk(child, out, in_body, pre);
            }
            if matches!(name, "td" | "th") {
                out.cell();
            }
            if level > 0 {
                out.brk(level);
            }
        }
        Node::Document | Node::Fragment => {
            for child in node.children() {
                walk(child, out, in_body, pre);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_main_text_and_drops_boilerplate() {
        let html = r#"<!doctype html><html><head><title>T</title>
            <style>body{color:red}</style><script>var x = "no";</script></head>
            <body><nav><a href="/">Trang chủ</a> | <a href="/a">Giới thiệu</a></nav>
            <header>Site banner</header>
            <main><h1>Xin chào</h1><p>Đây là   đoạn <b>văn</b> đầu tiên.</p>
            <ul><li>Một</li><li>Hai</li></ul>
            <table><tr><th>Tên</th><th>Giá</th></tr><tr><td>Phở</td><td>50.000</td></tr></table>
            <div hidden>secret</div><script>alert(1)</script></main>
            <footer>© footer</footer></body></html>"#;
        let text = html_to_text(html);
        assert_eq!(
            text,
            "Xin chào\n\nĐây là đoạn văn đầu tiên.\n\nMột\nHai\n\nTên\tGiá\nPhở\t50.000"
        );
    }

    #[test]
    fn without_main_it_walks_the_body_minus_chrome() {
        let html = "<body><header>Menu</header><div>Hello <i>world</i></div><div>Again</div>\
                    <footer>Copyright</footer></body>";
        assert_eq!(html_to_text(html), "Hello world\nAgain");
    }
}
