//! `config show`: the effective settings as TOML sections, each value with where it came from
//! (or, for `--json`, as one document).

use ragshift_config::{Config, Setting};
use serde_json::{json, Value};

use crate::Text;

/// `[section]` headers with a blank line between sections, then `key = value  # origin`.
pub fn settings(entries: &[Setting]) -> String {
    let mut t = Text::default();
    let mut current = String::new();
    for s in entries {
        let (section, key) = s.path.split_once('.').unwrap_or((&s.path, ""));
        if section != current {
            if !current.is_empty() {
                t.line("");
            }
            t.line(format!("[{section}]"));
            current = section.to_owned();
        }
        t.line(format!("{key} = {}  # {}", s.value, s.origin));
    }
    t.into_string()
}

/// `config show --json`: the effective values, and where each key's value came from.
pub fn json(config: &Config, entries: &[Setting]) -> serde_json::Result<Value> {
    let origins: serde_json::Map<String, Value> = entries
        .iter()
        .map(|s| (s.path.clone(), json!(s.origin)))
        .collect();
    Ok(json!({ "config": serde_json::to_value(config)?, "origins": origins }))
}
