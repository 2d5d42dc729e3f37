//! What the table is besides its rows: the constraints that keep it consistent (primary key,
//! unique, check, foreign key, NOT NULL) and the indexes that make it fast. A target that holds
//! every row but lost its primary key accepts duplicates; one without its vector index answers
//! every search by reading the whole table.

use serde::Serialize;
use tokio_postgres::GenericClient;

use ragshift_store::ident::Layout;
use ragshift_store::StoreError;

/// A constraint or index of the source, and whether the target has it.
#[derive(Debug, Clone, Serialize)]
pub struct StructureCheck {
    /// `constraint` or `index`.
    pub kind: &'static str,
    /// The source's name for it.
    pub name: String,
    /// Its definition, with the table's own name left out (so a table copied under another
    /// name compares alike).
    pub definition: String,
    /// What is wrong, if anything.
    pub problem: Option<String>,
    /// Whether it is a vector index (HNSW or IVFFlat), which any such index can stand for.
    pub vector_index: bool,
}

/// One table's constraints and indexes, each as `(name, definition)`.
struct Structure {
    constraints: Vec<(String, String)>,
    indexes: Vec<(String, String)>,
    not_null: Vec<String>,
}

/// The index methods that serve vector searches: any of them stands for another (a target
/// built with HNSW where the source had IVFFlat is a choice, not a loss).
const VECTOR_METHODS: &[&str] = &["ivfflat", "hnsw"];

/// The table's constraints, indexes and NOT NULL columns, from the catalog reader copy and
/// import rebuild tables with (a missing table has none).
async fn read(client: &impl GenericClient, layout: &Layout) -> Result<Structure, StoreError> {
    let Some(def) = ragshift_store::catalog::read_table(client, layout).await? else {
        return Ok(Structure {
            constraints: Vec::new(),
            indexes: Vec::new(),
            not_null: Vec::new(),
        });
    };
    Ok(Structure {
        constraints: def
            .constraints
            .iter()
            .map(|c| (c.name.clone(), foreign_key_target_left_out(&c.definition)))
            .collect(),
        // `CREATE [UNIQUE] INDEX name ON table USING method (...)`: from USING on, it names
        // neither the index nor the table.
        indexes: def
            .indexes
            .iter()
            .map(|i| {
                let unique = if i.definition.starts_with("CREATE UNIQUE ") {
                    "UNIQUE "
                } else {
                    ""
                };
                (i.name.clone(), format!("{unique}USING {}", i.body()))
            })
            .collect(),
        not_null: def
            .columns
            .iter()
            .filter(|c| c.not_null)
            .map(|c| c.name.clone())
            .collect(),
    })
}

/// `FOREIGN KEY (a) REFERENCES s.t(id)` without `s.t`: a parent copied under another name is
/// still the same key.
fn foreign_key_target_left_out(def: &str) -> String {
    let Some(at) = def.find("REFERENCES ") else {
        return def.to_owned();
    };
    let rest = &def[at + "REFERENCES ".len()..];
    match rest.find('(') {
        Some(open) => format!("{}REFERENCES {}", &def[..at], &rest[open..]),
        None => def.to_owned(),
    }
}

fn method(body: &str) -> Option<&str> {
    body.trim_start_matches("UNIQUE ")
        .strip_prefix("USING ")
        .and_then(|b| b.split_whitespace().next())
}

/// The source's constraints, NOT NULL columns and indexes, each checked on the target. Missing
/// ones are problems; a vector index of another method counts as present.
pub async fn check(
    source: &impl GenericClient,
    source_layout: &Layout,
    target: &impl GenericClient,
    target_layout: &Layout,
) -> Result<Vec<StructureCheck>, StoreError> {
    let s = read(source, source_layout).await?;
    let t = read(target, target_layout).await?;
    let table = target_layout.display_name();
    let mut source_side = Vec::new();
    for (name, def) in &s.constraints {
        let found = t.constraints.iter().any(|(_, d)| d == def);
        source_side.push(StructureCheck {
            kind: "constraint",
            vector_index: false,
            name: name.clone(),
            definition: def.clone(),
            problem: (!found)
                .then(|| format!("{table} lacks the source's constraint {name}: {def}")),
        });
    }
    for column in &s.not_null {
        let found = t.not_null.contains(column);
        source_side.push(StructureCheck {
            kind: "constraint",
            vector_index: false,
            name: format!("{column} NOT NULL"),
            definition: format!("{column} NOT NULL"),
            problem: (!found)
                .then(|| format!("{table}.{column} accepts NULL; on the source it is NOT NULL")),
        });
    }
    let mut indexes = Vec::new();
    for (name, body) in &s.indexes {
        let vector = method(body).filter(|m| VECTOR_METHODS.contains(m));
        let found = t.indexes.iter().any(|(_, b)| {
            b == body
                || vector.is_some_and(|_| {
                    method(b).is_some_and(|m| VECTOR_METHODS.contains(&m))
                        && vector_column(b) == vector_column(body)
                })
        });
        indexes.push(StructureCheck {
            kind: "index",
            vector_index: vector.is_some(),
            name: name.clone(),
            definition: body.clone(),
            problem: (!found).then(|| {
                if vector.is_some() {
                    format!(
                        "{table} has no vector index like the source's {name} ({body}): every search reads the whole table; build it with `ragshift build-index`"
                    )
                } else {
                    format!("{table} lacks the source's index {name}: {body}")
                }
            }),
        });
    }
    source_side.extend(indexes);
    Ok(source_side)
}

/// The column a vector index is on (`USING hnsw (embedding vector_cosine_ops)` → `embedding`).
fn vector_column(body: &str) -> Option<&str> {
    let open = body.find('(')?;
    body[open + 1..]
        .split(|c: char| c.is_whitespace() || c == ')')
        .next()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn definitions_leave_out_the_parent_and_find_the_vector_column() {
        assert_eq!(
            foreign_key_target_left_out(
                "FOREIGN KEY (collection_id) REFERENCES langchain_pg_collection(uuid) ON DELETE CASCADE"
            ),
            "FOREIGN KEY (collection_id) REFERENCES (uuid) ON DELETE CASCADE"
        );
        assert_eq!(
            foreign_key_target_left_out("PRIMARY KEY (id)"),
            "PRIMARY KEY (id)"
        );
        let body = "USING hnsw (embedding vector_cosine_ops) WITH (m='16')";
        assert_eq!(method(body), Some("hnsw"));
        assert_eq!(vector_column(body), Some("embedding"));
        assert_eq!(method("UNIQUE USING btree (id)"), Some("btree"));
    }
}
