//! DynamoDB attribute values, read from either the SDK or DynamoDB JSON (`{"S": "..."}`,
//! `{"N": "1000"}`, …), so that one decoder serves the live table and its exports alike.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::Value;

/// One attribute value, in the shapes the registry's items use. Binary values are kept only as a
/// marker: no bot attribute is binary, so their bytes are never needed.
#[derive(Debug, Clone, PartialEq)]
pub enum Attr {
    /// `S`.
    S(String),
    /// `N`, kept as the text DynamoDB sends (numbers are strings on the wire).
    N(String),
    /// `BOOL`.
    Bool(bool),
    /// `NULL`.
    Null,
    /// `L`.
    L(Vec<Attr>),
    /// `M`.
    M(HashMap<String, Attr>),
    /// `SS`.
    Ss(Vec<String>),
    /// `NS`.
    Ns(Vec<String>),
    /// `B` or `BS`.
    Binary,
}

/// An item: attribute name → value.
pub type Item = HashMap<String, Attr>;

impl Attr {
    /// The DynamoDB type descriptor, for messages ("Knowledge is a S, expected a M").
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::S(_) => "S",
            Self::N(_) => "N",
            Self::Bool(_) => "BOOL",
            Self::Null => "NULL",
            Self::L(_) => "L",
            Self::M(_) => "M",
            Self::Ss(_) => "SS",
            Self::Ns(_) => "NS",
            Self::Binary => "B",
        }
    }

    /// Reads one value in DynamoDB JSON: an object with exactly one type descriptor.
    pub fn from_json(value: &Value) -> Result<Self, String> {
        let Value::Object(map) = value else {
            return Err(format!(
                "expected DynamoDB JSON like {{\"S\": …}}, found {value}"
            ));
        };
        let mut entries = map.iter();
        let (Some((tag, inner)), None) = (entries.next(), entries.next()) else {
            return Err(format!(
                "expected one DynamoDB type descriptor (S, N, M, L, …), found {} keys",
                map.len()
            ));
        };
        let text = |v: &Value| -> Result<String, String> {
            v.as_str()
                .map(str::to_owned)
                .ok_or_else(|| format!("{tag} value must be a JSON string, found {v}"))
        };
        let texts = |v: &Value| -> Result<Vec<String>, String> {
            v.as_array()
                .ok_or_else(|| format!("{tag} value must be a JSON array"))?
                .iter()
                .map(text)
                .collect()
        };
        Ok(match tag.as_str() {
            "S" => Self::S(text(inner)?),
            "N" => match inner {
                // Some tools write numbers unquoted; the value is the same.
                Value::Number(n) => Self::N(n.to_string()),
                other => Self::N(text(other)?),
            },
            "BOOL" => Self::Bool(
                inner
                    .as_bool()
                    .ok_or_else(|| format!("BOOL value must be true or false, found {inner}"))?,
            ),
            "NULL" => Self::Null,
            "L" => Self::L(
                inner
                    .as_array()
                    .ok_or_else(|| "L value must be a JSON array".to_owned())?
                    .iter()
                    .map(Self::from_json)
                    .collect::<Result<_, _>>()?,
            ),
            "M" => Self::M(
                inner
                    .as_object()
                    .ok_or_else(|| "M value must be a JSON object".to_owned())?
                    .iter()
                    .map(|(k, v)| Ok((k.clone(), Self::from_json(v)?)))
                    .collect::<Result<_, String>>()?,
            ),
            "SS" => Self::Ss(texts(inner)?),
            "NS" => Self::Ns(texts(inner)?),
            "B" | "BS" => Self::Binary,
            other => return Err(format!("unknown DynamoDB type descriptor {other:?}")),
        })
    }

    /// Converts an SDK value.
    pub fn from_sdk(value: &AttributeValue) -> Self {
        match value {
            AttributeValue::S(s) => Self::S(s.clone()),
            AttributeValue::N(n) => Self::N(n.clone()),
            AttributeValue::Bool(b) => Self::Bool(*b),
            AttributeValue::Null(_) => Self::Null,
            AttributeValue::L(l) => Self::L(l.iter().map(Self::from_sdk).collect()),
            AttributeValue::M(m) => Self::M(
                m.iter()
                    .map(|(k, v)| (k.clone(), Self::from_sdk(v)))
                    .collect(),
            ),
            AttributeValue::Ss(v) => Self::Ss(v.clone()),
            AttributeValue::Ns(v) => Self::Ns(v.clone()),
            _ => Self::Binary,
        }
    }
}

/// Converts the attributes named in `wanted` of an SDK item (the rest is never looked at).
pub fn item_from_sdk(item: &HashMap<String, AttributeValue>, wanted: &[&str]) -> Item {
    wanted
        .iter()
        .filter_map(|name| {
            item.get(*name)
                .map(|v| ((*name).to_owned(), Attr::from_sdk(v)))
        })
        .collect()
}

/// Reads the attributes named in `wanted` of an item in DynamoDB JSON (`{"PK": {"S": …}, …}`);
/// an attribute that isn't DynamoDB JSON is an error naming it.
pub fn item_from_json(
    item: &serde_json::Map<String, Value>,
    wanted: &[&str],
) -> Result<Item, String> {
    let mut out = Item::new();
    for name in wanted {
        if let Some(v) = item.get(*name) {
            let attr = Attr::from_json(v).map_err(|e| format!("attribute {name}: {e}"))?;
            out.insert((*name).to_owned(), attr);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dynamodb_json_values_of_every_shape() {
        let v = json!({"M": {
            "a": {"S": "x"}, "n": {"N": "1000"}, "u": {"N": 12}, "b": {"BOOL": true},
            "z": {"NULL": true}, "l": {"L": [{"S": "u"}]}, "ss": {"SS": ["p", "q"]},
            "bin": {"B": "AAE="}
        }});
        let Attr::M(m) = Attr::from_json(&v).unwrap() else {
            panic!("not a map")
        };
        assert_eq!(m["a"], Attr::S("x".into()));
        assert_eq!(m["n"], Attr::N("1000".into()));
        assert_eq!(m["u"], Attr::N("12".into()));
        assert_eq!(m["b"], Attr::Bool(true));
        assert_eq!(m["z"], Attr::Null);
        assert_eq!(m["l"], Attr::L(vec![Attr::S("u".into())]));
        assert_eq!(m["ss"], Attr::Ss(vec!["p".into(), "q".into()]));
        assert_eq!(m["bin"], Attr::Binary);
    }

    #[test]
    fn malformed_dynamodb_json_says_what_is_wrong() {
        assert!(Attr::from_json(&json!("plain"))
            .unwrap_err()
            .contains("DynamoDB JSON"));
        assert!(Attr::from_json(&json!({"S": 5}))
            .unwrap_err()
            .contains("JSON string"));
        assert!(Attr::from_json(&json!({"Q": "x"}))
            .unwrap_err()
            .contains("\"Q\""));
        assert!(Attr::from_json(&json!({"S": "a", "N": "1"}))
            .unwrap_err()
            .contains("2 keys"));
        let item = json!({"Title": "plain"});
        let err = item_from_json(item.as_object().unwrap(), &["Title"]).unwrap_err();
        assert!(err.starts_with("attribute Title"), "{err}");
    }
}
