//! `init-target` and `search`: what they found or did on the target, as text.

use ragshift_store::schema::InitOutcome;
use ragshift_store::search::SearchHit;

use crate::Text;

/// Whether the chunk table was created or already had the expected shape.
pub fn init(
    outcome: InitOutcome,
    table: &str,
    shape: &str,
    server: &str,
    pgvector: &str,
) -> String {
    match outcome {
        InitOutcome::Created => format!(
            "created {table} {shape} on {server} (pgvector {pgvector}); build the vector index after loading with `ragshift build-index`\n"
        ),
        InitOutcome::AlreadyPresent => format!(
            "{table} already has the expected shape {shape} on {server}; nothing changed\n"
        ),
    }
}

/// Each hit ranked, with its distance, id, source and the start of its text on one line.
pub fn hits(bot: &str, hits: &[SearchHit]) -> String {
    let mut t = Text::default();
    if hits.is_empty() {
        t.line(format!("no chunks for bot {bot}"));
    }
    for h in hits {
        let preview: String = h.content.chars().take(160).collect();
        t.line(format!(
            "{:>3}. {:.4}  {}  {}\n     {}",
            h.rank,
            h.distance,
            h.id,
            h.source,
            preview.replace('\n', " ")
        ));
    }
    t.into_string()
}
