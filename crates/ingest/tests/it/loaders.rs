//! Every file type, in Vietnamese and English, plus corrupt, truncated and empty files.

use ragshift_ingest::{load, ErrorKind, Hint, LoaderKind};

use crate::files::{self, EN_1, EN_2, VI_1, VI_2};

fn ok(name: &str, bytes: &[u8]) -> (LoaderKind, String) {
    match load(&Hint::name(name), bytes) {
        Ok(l) => (l.loader, l.text),
        Err(e) => panic!("{name}: {e}"),
    }
}

#[test]
fn plain_text_and_markdown() {
    let text = format!("{VI_1}\r\n{EN_1}\n");
    assert_eq!(
        ok("a.txt", text.as_bytes()),
        (LoaderKind::Text, format!("{VI_1}\n{EN_1}\n"))
    );
    let md = format!("# Tiêu đề\n\n{VI_2}\n\n## Title\n\n{EN_2}\n");
    assert_eq!(
        ok("notes.md", md.as_bytes()),
        (LoaderKind::Markdown, md.clone())
    );
}

#[test]
fn html_keeps_main_text_only() {
    let html = format!(
        "<!DOCTYPE html><html><head><title>x</title><script>var a=1;</script></head><body>\
         <nav><a href='/'>Home</a></nav><article><h1>Bài viết</h1><p>{VI_1}</p><p>{EN_1}</p>\
         </article><footer>Footer text</footer></body></html>"
    );
    let (kind, text) = ok("page", html.as_bytes());
    assert_eq!(kind, LoaderKind::Html);
    assert_eq!(text, format!("Bài viết\n\n{VI_1}\n\n{EN_1}"));
}

#[test]
fn pdf_text_layer_with_pages_joined() {
    let pdf = files::pdf(&[&[VI_1, VI_2], &[EN_1, EN_2]]);
    let (kind, text) = ok("doc.pdf", &pdf);
    assert_eq!(kind, LoaderKind::Pdf);
    assert_eq!(text, format!("{VI_1}\n{VI_2}\n\n{EN_1}\n{EN_2}"));
}

#[test]
fn docx_paragraphs_and_tables() {
    let docx = files::docx(&[VI_1, EN_1], [["Tên", "Giá"], ["Phở & cà phê", "50.000"]]);
    let (kind, text) = ok("file.docx", &docx);
    assert_eq!(kind, LoaderKind::Docx);
    assert_eq!(
        text,
        format!("{VI_1}\n\n{EN_1}\n\nTên\tGiá\nPhở & cà phê\t50.000")
    );
}

#[test]
fn pptx_slides_in_numeric_order() {
    let slides: Vec<Vec<String>> = (1..=11)
        .map(|i| vec![format!("Slide {i}: {VI_2}")])
        .collect();
    let refs: Vec<Vec<&str>> = slides
        .iter()
        .map(|s| s.iter().map(String::as_str).collect())
        .collect();
    let refs: Vec<&[&str]> = refs.iter().map(Vec::as_slice).collect();
    let (kind, text) = ok("deck.pptx", &files::pptx(&refs));
    assert_eq!(kind, LoaderKind::Pptx);
    let order: Vec<&str> = text.split("\n\n\n").collect();
    assert_eq!(order.len(), 11);
    assert!(order[1].starts_with("Slide 2:") && order[10].starts_with("Slide 11:"));
}

#[test]
fn xlsx_cells_of_every_sheet() {
    let (kind, text) = ok("prices.xlsx", &files::xlsx());
    assert_eq!(kind, LoaderKind::Xlsx);
    assert_eq!(
        text,
        "Bảng giá\nMón ăn\tGiá\nPhở bò\t50000\nBánh mì\t25000.5\n\n\nPrices\nItem\t\tNote\nCoffee\ttrue\tHot & strong"
    );
}

#[test]
fn csv_rows_become_labelled_lines() {
    let csv = "Tên,Mô tả,Giá\nPhở,\"Nước dùng, thơm\",50000\nCoffee,,20000\n";
    let (kind, text) = ok("menu.csv", csv.as_bytes());
    assert_eq!(kind, LoaderKind::Csv);
    assert_eq!(
        text,
        "Tên: Phở\nMô tả: Nước dùng, thơm\nGiá: 50000\n\nTên: Coffee\nGiá: 20000\n\n"
    );
    let (_, semi) = ok("x.csv", "a;b\n1;2\n".as_bytes());
    assert_eq!(semi, "a: 1\nb: 2\n\n");
}

#[test]
fn json_values_with_their_paths() {
    let json = format!(r#"{{"title": "{VI_1}", "en": {{"body": "{EN_1}"}}, "tags": ["a", "b"]}}"#);
    let (kind, text) = ok("data.json", json.as_bytes());
    assert_eq!(kind, LoaderKind::Json);
    assert_eq!(
        text,
        format!("title: {VI_1}\nen.body: {EN_1}\ntags[0]: a\ntags[1]: b\n")
    );
}

#[test]
fn content_decides_when_the_name_is_missing_or_wrong() {
    let docx = files::docx(&[EN_1], [["a", "b"], ["c", "d"]]);
    assert_eq!(ok("download", &docx).0, LoaderKind::Docx);
    assert_eq!(ok("misnamed.txt", &files::xlsx()).0, LoaderKind::Xlsx);
    assert_eq!(ok("x", &files::pdf(&[&[EN_1]])).0, LoaderKind::Pdf);
}

#[test]
fn legacy_encodings_are_converted_and_reported() {
    let text = "Ceci est un résumé très détaillé, écrit en français à Montréal. ".repeat(10);
    let (bytes, _, _) = encoding_rs::WINDOWS_1252.encode(&text);
    let loaded = load(&Hint::name("fr.txt"), &bytes).unwrap();
    assert_eq!(loaded.text, text);
    assert_eq!(
        loaded.warnings,
        vec!["text was converted to UTF-8 from windows-1252".to_owned()]
    );
}

#[test]
fn zero_byte_files_fail_as_empty() {
    for name in [
        "a.txt", "a.md", "a.html", "a.pdf", "a.docx", "a.xlsx", "a.pptx", "a.csv", "a.json",
        "noext",
    ] {
        assert_eq!(
            load(&Hint::name(name), b"").unwrap_err(),
            ErrorKind::Empty,
            "{name}"
        );
    }
}

fn assert_corrupt(name: &str, bytes: &[u8]) {
    match load(&Hint::name(name), bytes) {
        Err(
            ErrorKind::Corrupt { .. } | ErrorKind::NoText { .. } | ErrorKind::Unsupported { .. },
        ) => {}
        other => panic!(
            "{name} ({} bytes): expected a failure, got {other:?}",
            bytes.len()
        ),
    }
}

#[test]
fn truncated_and_corrupt_binary_files_fail_cleanly() {
    let samples: Vec<(&str, Vec<u8>)> = vec![
        ("t.pdf", files::pdf(&[&[VI_1], &[EN_1]])),
        ("t.docx", files::docx(&[VI_1], [["a", "b"], ["c", "d"]])),
        ("t.xlsx", files::xlsx()),
        ("t.pptx", files::pptx(&[&[VI_1], &[EN_1]])),
    ];
    for (name, bytes) in &samples {
        // Truncated at several points, including inside the header and the directory.
        for cut in [5, 40, bytes.len() / 3, bytes.len() / 2, bytes.len() - 30] {
            let cut_bytes = &bytes[..cut];
            // A PDF cut late may keep enough to read; it must never panic or hang.
            if name.ends_with(".pdf") && cut > bytes.len() / 2 {
                let _ = load(&Hint::name(name), cut_bytes);
                continue;
            }
            assert_corrupt(name, cut_bytes);
        }
        // Bytes flipped in the middle.
        let mut flipped = bytes.clone();
        let mid = flipped.len() / 2;
        for b in &mut flipped[mid..(mid + 64).min(bytes.len())] {
            *b ^= 0x5A;
        }
        let _ = load(&Hint::name(name), &flipped);
    }
    assert_corrupt("fake.pdf", b"%PDF-1.4\n garbage without objects");
    assert_corrupt("fake.docx", b"PK\x03\x04 not really a zip");
    assert_corrupt("plain.zip", &zip_with("readme.txt"));
    assert_corrupt("fake.xlsx", b"just text pretending");
    assert_corrupt("bad.json", b"{\"a\": [1, 2");
}

fn zip_with(name: &str) -> Vec<u8> {
    use std::io::Write;
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    zip.start_file(name, zip::write::SimpleFileOptions::default())
        .unwrap();
    zip.write_all(b"hello").unwrap();
    zip.finish().unwrap().into_inner()
}
