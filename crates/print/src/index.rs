//! `build-index`: what happened to the vector index, as text or as the `summary` JSON event.

use ragshift_store::index::IndexOutcome;

/// The outcome for people: built (with its time) or already there.
pub fn outcome(outcome: &IndexOutcome) -> String {
    match outcome {
        IndexOutcome::Built {
            definition,
            elapsed,
        } => format!("built in {:.1}s: {definition}\n", elapsed.as_secs_f64()),
        IndexOutcome::Present(i) => format!(
            "a vector index is already there, nothing built: {}\n",
            i.definition
        ),
    }
}

/// The outcome as the last JSON line of a build (`"event": "summary"`).
pub fn summary_json(outcome: &IndexOutcome) -> String {
    match outcome {
        IndexOutcome::Built {
            definition,
            elapsed,
        } => serde_json::json!({
            "event": "summary", "built": true, "definition": definition,
            "seconds": elapsed.as_secs_f64()
        }),
        IndexOutcome::Present(i) => {
            serde_json::json!({"event": "summary", "built": false, "definition": i.definition})
        }
    }
    .to_string()
}
