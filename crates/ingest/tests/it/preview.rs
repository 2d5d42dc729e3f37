//! `ragshift chunk`'s library side: the JSON shape and the human rendering.

use ragshift_ingest::{preview, AllowList, IngestOptions};
use ragshift_model::EmbeddingParams;
use serde_json::Value;

use crate::server;

#[tokio::test]
async fn preview_reports_every_source_in_the_documented_shape() {
    let srv = server::start().await;
    let dir = tempfile::tempdir().unwrap();
    let vi = dir.path().join("vi.txt");
    let text = "Câu thứ nhất nói về cơ sở dữ liệu. Câu thứ hai nói về vector. ".repeat(6);
    std::fs::write(&vi, &text).unwrap();
    let empty = dir.path().join("empty.md");
    std::fs::write(&empty, "").unwrap();
    let inputs = vec![
        vi.display().to_string(),
        srv.url("/page.html"),
        empty.display().to_string(),
        dir.path().join("missing.pdf").display().to_string(),
        "s3://bucket/key.pdf".to_owned(),
    ];
    let params = EmbeddingParams {
        chunk_size: 100,
        chunk_overlap: 20,
        ..EmbeddingParams::default()
    };
    let opts = IngestOptions {
        allow: AllowList::loopback(),
        ..IngestOptions::default()
    };
    let report = preview(&inputs, params, &opts).await;
    assert!(report.any_failed());

    let json: Value = serde_json::to_value(&report).unwrap();
    let sources = json["sources"].as_array().unwrap();
    assert_eq!(sources.len(), 5);
    for s in sources {
        let mut keys: Vec<&str> = s.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            ["chars", "chunks", "error", "loader", "source", "status"]
        );
    }
    let first = &sources[0];
    assert_eq!(first["source"], inputs[0].as_str());
    assert_eq!(first["loader"], "text");
    assert_eq!(first["status"], "loaded");
    assert_eq!(first["error"], Value::Null);
    assert_eq!(first["chars"], text.chars().count());
    let chunks = first["chunks"].as_array().unwrap();
    assert!(chunks.len() > 3);
    for (i, c) in chunks.iter().enumerate() {
        assert_eq!(c["index"], i);
        let t = c["text"].as_str().unwrap();
        assert_eq!(c["chars"], t.chars().count());
        assert!(t.chars().count() <= 100);
    }
    assert_eq!(sources[1]["loader"], "html");
    assert_eq!(sources[1]["status"], "loaded");
    assert_eq!(sources[2]["status"], "failed");
    assert_eq!(sources[2]["loader"], Value::Null);
    assert!(sources[2]["error"].as_str().unwrap().contains("empty"));
    assert_eq!(sources[2]["chunks"].as_array().unwrap().len(), 0);
    assert!(sources[3]["error"]
        .as_str()
        .unwrap()
        .starts_with("read error"));
    assert!(sources[4]["error"]
        .as_str()
        .unwrap()
        .starts_with("unsupported source"));

    let human = report.render();
    assert!(human.contains(&format!(
        "== {} [text] {} chars",
        inputs[0],
        text.chars().count()
    )));
    assert!(human.contains("-- chunk 0 ("));
    assert!(human.contains(&format!(
        "== {} [-] FAILED: the document is empty",
        inputs[2]
    )));
    assert!(human.contains("5 source(s), 3 failed, "), "{human}");
}
