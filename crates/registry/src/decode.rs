//! Turning one registry item into a [`Bot`], tolerating what real tables hold (missing
//! `EmbeddingParams` or some of its keys, numbers as `N` strings, empty lists, extra attributes)
//! and reporting, with the item's key and the reason, what cannot be understood.

use std::collections::HashMap;

use ragshift_model::{Bot, BotKey, EmbeddingParams, Knowledge, SyncStatus};
use serde::Serialize;

use crate::attr::{Attr, Item};

/// The attributes a migration reads; everything else on an item is ignored (and, on the live
/// table, not even transferred).
pub const BOT_ATTRIBUTES: &[&str] = &[
    "PK",
    "SK",
    "Title",
    "Knowledge",
    "EmbeddingParams",
    "SyncStatus",
    "SyncStatusReason",
    "LastExecId",
];

/// What the platform's own migration script filters on: bots have `#BOT#` in their sort key;
/// aliases (`#BOT_ALIAS#`) and conversations (`#CONV#`) don't.
pub const BOT_MARKER: &str = "#BOT#";

/// An item that looks like a bot but cannot be understood; the scan goes on without it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InvalidItem {
    /// The item's sort key (`{user}#BOT#{bot}`), or what is known of its key.
    pub key: String,
    /// Why it was refused, naming the attribute.
    pub error: String,
}

/// The verdict on one item.
#[derive(Debug, Clone, PartialEq)]
pub enum Decoded {
    /// A bot.
    Bot(Box<Bot>),
    /// An alias, a conversation or anything else whose sort key has no `#BOT#`.
    NotABot,
    /// A bot item that cannot be understood.
    Invalid(InvalidItem),
}

/// Decodes one item (only the [`BOT_ATTRIBUTES`] of it are looked at).
pub fn decode(item: &Item) -> Decoded {
    let sk = match item.get("SK") {
        Some(Attr::S(sk)) => sk,
        Some(other) => {
            return Decoded::Invalid(InvalidItem {
                key: describe_key(item),
                error: format!("SK is a {}, expected S", other.type_name()),
            })
        }
        None => {
            return Decoded::Invalid(InvalidItem {
                key: describe_key(item),
                error: "the item has no SK".to_owned(),
            })
        }
    };
    if !sk.contains(BOT_MARKER) {
        return Decoded::NotABot;
    }
    match decode_bot(item, sk) {
        Ok(bot) => Decoded::Bot(Box::new(bot)),
        Err(error) => Decoded::Invalid(InvalidItem {
            key: sk.clone(),
            error,
        }),
    }
}

fn describe_key(item: &Item) -> String {
    let part = |name: &str| match item.get(name) {
        Some(Attr::S(s)) => s.clone(),
        Some(other) => format!("<{}>", other.type_name()),
        None => "<missing>".to_owned(),
    };
    format!("PK={} SK={}", part("PK"), part("SK"))
}

fn decode_bot(item: &Item, sk: &str) -> Result<Bot, String> {
    let pk = match item.get("PK") {
        Some(Attr::S(pk)) => pk,
        Some(other) => return Err(format!("PK is a {}, expected S", other.type_name())),
        None => return Err("the item has no PK".to_owned()),
    };
    let key = BotKey::from_registry_keys(pk, sk).map_err(|e| e.to_string())?;
    let mut bot = Bot::new(key, optional_string(item, "Title")?.unwrap_or_default());
    bot.knowledge = knowledge(item.get("Knowledge"))?;
    bot.embedding_params = embedding_params(item.get("EmbeddingParams"))?;
    bot.sync_status = optional_string(item, "SyncStatus")?
        .as_deref()
        .and_then(SyncStatus::parse);
    bot.sync_status_reason = optional_string(item, "SyncStatusReason")?;
    bot.last_exec_id = optional_string(item, "LastExecId")?;
    Ok(bot)
}

/// A string attribute that may be missing or NULL.
fn optional_string(item: &Item, name: &str) -> Result<Option<String>, String> {
    match item.get(name) {
        None | Some(Attr::Null) => Ok(None),
        Some(Attr::S(s)) => Ok(Some(s.clone())),
        Some(other) => Err(format!("{name} is a {}, expected S", other.type_name())),
    }
}

fn knowledge(attr: Option<&Attr>) -> Result<Knowledge, String> {
    let map = match attr {
        None | Some(Attr::Null) => return Ok(Knowledge::default()),
        Some(Attr::M(map)) => map,
        Some(other) => {
            return Err(format!(
                "Knowledge is a {}, expected a map (M) of source_urls, sitemap_urls, filenames",
                other.type_name()
            ))
        }
    };
    Ok(Knowledge {
        source_urls: string_list(map, "source_urls")?,
        sitemap_urls: string_list(map, "sitemap_urls")?,
        filenames: string_list(map, "filenames")?,
    })
}

fn string_list(map: &HashMap<String, Attr>, name: &str) -> Result<Vec<String>, String> {
    match map.get(name) {
        None | Some(Attr::Null) => Ok(Vec::new()),
        Some(Attr::Ss(v)) => Ok(v.clone()),
        Some(Attr::L(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| match v {
                Attr::S(s) => Ok(s.clone()),
                other => Err(format!(
                    "Knowledge.{name}[{i}] is a {}, expected S",
                    other.type_name()
                )),
            })
            .collect(),
        Some(other) => Err(format!(
            "Knowledge.{name} is a {}, expected a list of strings (L)",
            other.type_name()
        )),
    }
}

fn embedding_params(attr: Option<&Attr>) -> Result<EmbeddingParams, String> {
    let map = match attr {
        None | Some(Attr::Null) => return Ok(EmbeddingParams::default()),
        Some(Attr::M(map)) => map,
        Some(other) => {
            return Err(format!(
                "EmbeddingParams is a {}, expected a map (M)",
                other.type_name()
            ))
        }
    };
    let number = |name: &str, default: usize| -> Result<usize, String> {
        match map.get(name) {
            None | Some(Attr::Null) => Ok(default),
            Some(Attr::N(text) | Attr::S(text)) => parse_count(text)
                .ok_or_else(|| format!("EmbeddingParams.{name} = {text:?} is not a whole number")),
            Some(other) => Err(format!(
                "EmbeddingParams.{name} is a {}, expected N",
                other.type_name()
            )),
        }
    };
    let chunk_size = number("chunk_size", EmbeddingParams::DEFAULT_CHUNK_SIZE)?;
    let chunk_overlap = number("chunk_overlap", EmbeddingParams::DEFAULT_CHUNK_OVERLAP)?;
    let enable_partition_pdf = match map.get("enable_partition_pdf") {
        None | Some(Attr::Null) => false,
        Some(Attr::Bool(b)) => *b,
        Some(other) => {
            return Err(format!(
                "EmbeddingParams.enable_partition_pdf is a {}, expected BOOL",
                other.type_name()
            ))
        }
    };
    if chunk_size == 0 {
        return Err("EmbeddingParams.chunk_size is 0".to_owned());
    }
    if chunk_overlap >= chunk_size {
        return Err(format!(
            "EmbeddingParams.chunk_overlap ({chunk_overlap}) must be smaller than chunk_size ({chunk_size})"
        ));
    }
    Ok(EmbeddingParams {
        chunk_size,
        chunk_overlap,
        enable_partition_pdf,
    })
}

/// `1000`, `1000.0` and ` 1000 ` are all 1000; fractions and negatives are not counts.
fn parse_count(text: &str) -> Option<usize> {
    let t = text.trim();
    if let Ok(n) = t.parse::<usize>() {
        return Some(n);
    }
    let f: f64 = t.parse().ok()?;
    (f.fract() == 0.0 && f >= 0.0 && f <= usize::MAX as f64).then_some(f as usize)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attr::item_from_json;
    use serde_json::json;

    fn decode_json(v: serde_json::Value) -> Decoded {
        decode(&item_from_json(v.as_object().unwrap(), BOT_ATTRIBUTES).unwrap())
    }

    fn bot(v: serde_json::Value) -> Bot {
        match decode_json(v) {
            Decoded::Bot(b) => *b,
            other => panic!("not a bot: {other:?}"),
        }
    }

    #[test]
    fn a_full_bot_item() {
        let b = bot(json!({
            "PK": {"S": "u1"}, "SK": {"S": "u1#BOT#B1"}, "Title": {"S": "Docs"},
            "Knowledge": {"M": {
                "source_urls": {"L": [{"S": "https://example.com/a"}]},
                "sitemap_urls": {"L": []},
                "filenames": {"L": [{"S": "a.pdf"}, {"S": "b.txt"}]},
                "s3_urls": {"L": []}
            }},
            "EmbeddingParams": {"M": {"chunk_size": {"N": "512"}, "chunk_overlap": {"N": "64"},
                                      "enable_partition_pdf": {"BOOL": true}}},
            "SyncStatus": {"S": "SUCCEEDED"}, "SyncStatusReason": {"S": "ok"},
            "LastExecId": {"S": "task-1"}, "Instruction": {"S": "extra attributes are fine"}
        }));
        assert_eq!(b.key, BotKey::new("u1", "B1"));
        assert_eq!(b.title, "Docs");
        assert_eq!(b.knowledge.filenames, vec!["a.pdf", "b.txt"]);
        assert_eq!(b.knowledge.source_urls.len(), 1);
        assert_eq!(b.embedding_params.chunk_size, 512);
        assert_eq!(b.embedding_params.chunk_overlap, 64);
        assert!(b.embedding_params.enable_partition_pdf);
        assert_eq!(b.sync_status, Some(SyncStatus::Succeeded));
        assert_eq!(b.last_exec_id.as_deref(), Some("task-1"));
    }

    #[test]
    fn old_items_get_the_platform_defaults() {
        let b = bot(json!({"PK": {"S": "u"}, "SK": {"S": "u#BOT#b"}}));
        assert_eq!(b.embedding_params, EmbeddingParams::default());
        assert!(b.knowledge.is_empty());
        assert_eq!(b.title, "");
        let b = bot(json!({"PK": {"S": "u"}, "SK": {"S": "u#BOT#b"},
            "EmbeddingParams": {"M": {"chunk_size": {"N": "1500.0"}}},
            "Knowledge": {"M": {"filenames": {"SS": ["x.md"]}}},
            "SyncStatus": {"S": "SOMETHING_NEW"}}));
        assert_eq!(b.embedding_params.chunk_size, 1500);
        assert_eq!(b.embedding_params.chunk_overlap, 200);
        assert_eq!(b.knowledge.filenames, vec!["x.md"]);
        assert_eq!(b.sync_status, None);
    }

    #[test]
    fn aliases_and_conversations_are_not_bots() {
        for sk in ["u#BOT_ALIAS#x", "u#CONV#x", "u"] {
            assert_eq!(
                decode_json(json!({"PK": {"S": "u"}, "SK": {"S": sk}})),
                Decoded::NotABot
            );
        }
    }

    #[test]
    fn items_that_cannot_be_understood_name_key_and_reason() {
        let cases = [
            (
                json!({"PK": {"S": "u"}, "SK": {"S": "u#BOT#b"}, "Knowledge": {"S": "x"}}),
                "Knowledge is a S",
            ),
            (
                json!({"PK": {"S": "u"}, "SK": {"S": "u#BOT#b"},
                    "Knowledge": {"M": {"filenames": {"L": [{"N": "1"}]}}}}),
                "Knowledge.filenames[0] is a N",
            ),
            (
                json!({"PK": {"S": "u"}, "SK": {"S": "u#BOT#b"},
                    "EmbeddingParams": {"M": {"chunk_size": {"N": "abc"}}}}),
                "not a whole number",
            ),
            (
                json!({"PK": {"S": "u"}, "SK": {"S": "u#BOT#b"},
                    "EmbeddingParams": {"M": {"chunk_size": {"N": "100"}, "chunk_overlap": {"N": "100"}}}}),
                "must be smaller",
            ),
            (
                json!({"PK": {"S": "v"}, "SK": {"S": "u#BOT#b"}}),
                "does not belong",
            ),
            (json!({"SK": {"S": "u#BOT#b"}}), "no PK"),
        ];
        for (item, want) in cases {
            match decode_json(item) {
                Decoded::Invalid(inv) => {
                    assert_eq!(inv.key, "u#BOT#b");
                    assert!(inv.error.contains(want), "{} lacks {want}", inv.error);
                }
                other => panic!("expected invalid ({want}), got {other:?}"),
            }
        }
        match decode_json(json!({"PK": {"S": "u"}})) {
            Decoded::Invalid(inv) => assert_eq!(inv.key, "PK=u SK=<missing>"),
            other => panic!("{other:?}"),
        }
    }
}
