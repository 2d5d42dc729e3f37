//! The local model installed by scripts/setup-model.sh.

#[test]
fn model_dir_has_the_sentence_transformers_files() {
    let dir = ragshift_testkit::model_dir();
    for file in [
        "model.safetensors",
        "tokenizer.json",
        "config.json",
        "1_Pooling/config.json",
    ] {
        assert!(dir.join(file).is_file(), "{} lacks {file}", dir.display());
    }
}
