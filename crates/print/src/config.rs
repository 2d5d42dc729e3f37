//! `config show`: the effective settings as TOML sections, each value with where it came from.

use ragshift_config::Setting;

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
