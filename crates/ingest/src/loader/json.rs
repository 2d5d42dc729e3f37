//! JSON documents: every value becomes a `path: value` line (`items[2].title: …`), in document
//! order, with a blank line after each object of an array, so records stay together in chunks
//! and every value says what it is.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::error::ErrorKind;

/// A JSON value that keeps object keys in document order (serde_json's `Value` sorts them
/// unless a workspace-wide feature is switched on).
enum Json {
    Null,
    Scalar(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(JsonVisitor)
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Json, E> {
        Ok(Json::Scalar(v.to_string()))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Json, E> {
        Ok(Json::Scalar(v.to_string()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Json, E> {
        Ok(Json::Scalar(v.to_string()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Json, E> {
        Ok(Json::Scalar(v.to_string()))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Json, E> {
        Ok(Json::Scalar(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Json, E> {
        Ok(Json::Scalar(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut fields = Vec::new();
        while let Some((k, v)) = map.next_entry::<String, Json>()? {
            fields.push((k, v));
        }
        Ok(Json::Object(fields))
    }
}

/// Renders a JSON document as `path: value` lines.
pub(super) fn load(text: &str) -> Result<String, ErrorKind> {
    let value: Json = serde_json::from_str(text).map_err(|e| {
        ErrorKind::corrupt(
            "json",
            format!(
                "invalid JSON at line {} column {}: {e}",
                e.line(),
                e.column()
            ),
        )
    })?;
    let mut out = String::new();
    render(&value, &mut String::new(), &mut out);
    Ok(out)
}

fn render(v: &Json, path: &mut String, out: &mut String) {
    match v {
        Json::Null => {}
        Json::Scalar(s) => {
            if !path.is_empty() {
                out.push_str(path);
                out.push_str(": ");
            }
            out.push_str(s.trim());
            out.push('\n');
        }
        Json::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                render(item, path, out);
                path.truncate(len);
                if matches!(item, Json::Object(_) | Json::Array(_)) && !out.ends_with("\n\n") {
                    out.push('\n');
                }
            }
        }
        Json::Object(fields) => {
            for (k, item) in fields {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(k);
                render(item, path, out);
                path.truncate(len);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_paths_in_document_order() {
        let text = r#"{"zeta": "cuối", "alpha": {"n": 1.5, "ok": true, "none": null},
                       "items": [{"title": "Xin chào"}, {"title": "Hello"}]}"#;
        assert_eq!(
            load(text).unwrap(),
            "zeta: cuối\nalpha.n: 1.5\nalpha.ok: true\nitems[0].title: Xin chào\n\nitems[1].title: Hello\n\n"
        );
    }

    #[test]
    fn reports_where_json_is_broken() {
        let err = load("{\"a\": [1, 2,\n").unwrap_err();
        assert!(matches!(err, ErrorKind::Corrupt { ref detail, .. } if detail.contains("line 2")));
    }
}
