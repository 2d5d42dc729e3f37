//! The two sides of a comparison as the configuration names them, and the refusal of a
//! comparison that would prove nothing (a table with itself).

use ragshift_config::{Loaded, Origin};
use ragshift_store::identity::{identify, same_database};
use ragshift_store::{Layout, StoreError};

use crate::Store;

/// The two sides' layouts: the target takes the source's column names (as `copy` creates it)
/// unless its own were set, and its own schema and table. Shared by `verify` and `replicate`,
/// so both compare the same columns.
pub fn layouts(loaded: &Loaded) -> (Layout, Layout) {
    let c = &loaded.config;
    let source = Layout::from_config(&c.source);
    let own = Layout::from_config(&c.target);
    let set = |key: &str| loaded.origin(&format!("target.{key}")) != Origin::Default;
    let pick = |key: &str, mine: &String, theirs: &String| {
        if set(key) {
            mine.clone()
        } else {
            theirs.clone()
        }
    };
    let target = Layout {
        schema: own.schema.clone(),
        table: own.table.clone(),
        id: pick("id_column", &own.id, &source.id),
        bot: pick("bot_column", &own.bot, &source.bot),
        content: pick("content_column", &own.content, &source.content),
        source: pick("source_column", &own.source, &source.source),
        embedding: pick("embedding_column", &own.embedding, &source.embedding),
        extra_tables: source.extra_tables.clone(),
    };
    (source, target)
}

/// Why the two sides can't be compared, when they are the same table of the same database
/// however they are reached: a table compared with itself always matches, which proves
/// nothing. `None` when they are different tables.
pub async fn same_table(
    source: &Store<'_>,
    target: &Store<'_>,
) -> Result<Option<String>, StoreError> {
    let (si, ti) = tokio::join!(identify(source.client), identify(target.client));
    let (si, ti) = (si?, ti?);
    let same = same_database(&si, &ti)
        && source.layout.schema == target.layout.schema
        && source.layout.table == target.layout.table;
    Ok(same.then(|| {
        format!(
            "source and target are the same table: {} of {si}, reached as {} and {}; comparing a table with itself proves nothing. Give the old cluster (or a restored snapshot) as --source and the new one as --target",
            source.layout.display_name(),
            source.label,
            target.label
        )
    }))
}
