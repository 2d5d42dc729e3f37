//! The local model against vectors made by Python sentence-transformers
//! (tests/fixtures/make_reference.py), and the properties sentence-transformers guarantees.
//!
//! Needs the model installed by scripts/setup-model.sh (or RAGSHIFT_HOME pointing at a folder
//! that holds models/all-MiniLM-L6-v2).

use std::sync::OnceLock;

use ragshift_embed::local::{default_model_dir, LocalEmbedder, LocalOptions};
use ragshift_embed::{cosine, l2_norm, Embedder, Error};
use serde::Deserialize;

#[derive(Deserialize)]
struct Reference {
    max_seq_length: usize,
    texts: Vec<String>,
    token_counts_untruncated: Vec<usize>,
    vectors: Vec<Vec<f32>>,
}

fn reference() -> Reference {
    let text = include_str!("fixtures/minilm_reference.json");
    serde_json::from_str(text).expect("fixture parses")
}

fn model() -> &'static LocalEmbedder {
    static MODEL: OnceLock<LocalEmbedder> = OnceLock::new();
    let options = LocalOptions {
        model_dir: Some(ragshift_testkit::model_dir()),
        ..LocalOptions::default()
    };
    MODEL.get_or_init(|| match LocalEmbedder::load(&options) {
        Ok(m) => m,
        Err(e) => panic!("{e}"),
    })
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
}

#[test]
fn matches_sentence_transformers_reference_vectors() {
    let r = reference();
    let m = model();
    assert_eq!(m.max_seq_length(), r.max_seq_length);
    assert_eq!(m.dimension(), 384);
    let out = runtime()
        .block_on(m.embed_documents(&r.texts))
        .expect("embeds");
    assert_eq!(out.vectors.len(), r.texts.len());
    for (i, (got, want)) in out.vectors.iter().zip(&r.vectors).enumerate() {
        let c = cosine(got, want);
        assert!(
            c >= 0.999,
            "text {i} ({:?}…): cosine {c}",
            &r.texts[i].chars().take(30).collect::<String>()
        );
    }
    // The long text (470 word pieces) and the 152-token text are past tokenizer.json's fixed
    // 128; only the first exceeds the real 256 and counts as truncated.
    let over = r
        .token_counts_untruncated
        .iter()
        .filter(|&&n| n > r.max_seq_length)
        .count();
    assert_eq!(out.truncated, over as u64);
}

#[test]
fn batch_order_and_size_do_not_change_vectors() {
    let r = reference();
    let m = model();
    let rt = runtime();
    let all = rt.block_on(m.embed_documents(&r.texts)).expect("embeds");
    let mut reversed = r.texts.clone();
    reversed.reverse();
    let rev = rt.block_on(m.embed_documents(&reversed)).expect("embeds");
    let n = r.texts.len();
    for i in 0..n {
        let single = rt.block_on(m.embed_query(&r.texts[i])).expect("embeds");
        assert!(cosine(&all.vectors[i], &rev.vectors[n - 1 - i]) > 0.99999);
        assert!(cosine(&all.vectors[i], &single) > 0.99999);
        assert!((l2_norm(&single) - 1.0).abs() < 1e-4);
    }
}

#[test]
fn similar_sentences_are_closer() {
    let m = model();
    let texts: Vec<String> = [
        "A man is eating food.",
        "A man is eating a piece of bread.",
        "The new movie is awesome for kids.",
    ]
    .map(String::from)
    .to_vec();
    let v = runtime()
        .block_on(m.embed_documents(&texts))
        .expect("embeds")
        .vectors;
    assert!(cosine(&v[0], &v[1]) > cosine(&v[0], &v[2]));
    assert_eq!(
        v[0],
        runtime()
            .block_on(m.embed_query(&texts[0]))
            .expect("embeds")
    );
}

#[test]
fn missing_model_names_path_and_setup_script() {
    let dir = std::env::temp_dir().join("ragshift-embed-no-model-here");
    let err = LocalEmbedder::load(&LocalOptions {
        model_dir: Some(dir.clone()),
        ..LocalOptions::default()
    })
    .expect_err("no model there");
    assert!(matches!(err, Error::ModelMissing { .. }));
    let msg = err.to_string();
    assert!(msg.contains(&dir.display().to_string()), "{msg}");
    assert!(msg.contains("scripts/setup-model.sh"), "{msg}");
    // The default location is the setup script's.
    if std::env::var_os("RAGSHIFT_MODEL_DIR").is_none() {
        assert!(default_model_dir().ends_with("models/all-MiniLM-L6-v2"));
    }
}
