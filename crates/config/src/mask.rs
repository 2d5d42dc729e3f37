//! Keeping secrets out of output: connection strings are shown with the password masked and
//! sensitive strings can't be printed by accident.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::conninfo;

/// The text shown instead of a secret.
pub const MASK: &str = "****";

/// A string that must never reach logs or errors (passwords, API keys, connection strings with
/// passwords). `Debug`, `Display` and `Serialize` show it masked; [`Sensitive::expose`] gives the
/// real value to the code that needs it.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Sensitive(String);

impl Sensitive {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the one place that must use it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the secret is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Parsing never fails: it lets command-line flags hold a secret from the moment clap reads it.
impl std::str::FromStr for Sensitive {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self::new(s))
    }
}

impl fmt::Debug for Sensitive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&mask_url(&self.0))
    }
}

impl fmt::Display for Sensitive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&mask_url(&self.0))
    }
}

impl Serialize for Sensitive {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&mask_url(&self.0))
    }
}

impl<'de> Deserialize<'de> for Sensitive {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Self)
    }
}

/// Masks whatever in `s` could be a secret, and never returns text it could not make sense of:
/// - a URL (`postgres://u:pw@h/db?sslmode=require`) keeps its user, hosts, database and
///   query, with the password and any `password=`/`*secret` query value replaced by `****`
///   (the password may hold unencoded `#?/@:`, see [`crate::conninfo`]);
/// - a libpq key/value string keeps its known keys, with `password` (and unknown keys' values)
///   masked;
/// - anything else becomes `****`, after the host where one can be told (`postgres://****@h`).
pub fn mask_url(s: &str) -> String {
    if s.is_empty() {
        return String::new();
    }
    if s.contains("://") {
        return match conninfo::split_url(s) {
            Some(parts) => mask_parts(&parts),
            None => unparsed(s),
        };
    }
    match conninfo::parse_keyvalue(s) {
        Some(pairs) if pairs.iter().any(|(k, _)| known_key(k)) => pairs
            .iter()
            .map(|(k, v)| {
                if is_secret_key(k) || !known_key(k) {
                    format!("{k}={MASK}")
                } else {
                    format!("{k}={}", quote_keyvalue(v))
                }
            })
            .collect::<Vec<_>>()
            .join(" "),
        _ => unparsed(s),
    }
}

fn mask_parts(p: &conninfo::UrlParts<'_>) -> String {
    let mut out = format!("{}://", p.scheme);
    if let Some(user) = p.user {
        out.push_str(if plain(user) { user } else { MASK });
        if p.password.is_some() {
            out.push(':');
            out.push_str(MASK);
        }
        out.push('@');
    }
    out.push_str(p.hosts);
    let (path, query) = p.path_and_query();
    if let Some(path) = path {
        out.push('/');
        out.push_str(path);
    }
    if let Some(query) = query {
        out.push('?');
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, _)) if !plain(k) => MASK.to_owned(),
                Some((k, _)) if is_secret_key(k) => format!("{k}={MASK}"),
                Some(_) => pair.to_owned(),
                None if plain(pair) => pair.to_owned(),
                None => MASK.to_owned(),
            })
            .collect();
        out.push_str(&pairs.join("&"));
    }
    out
}

/// Text that can't be parsed: only the host, when one can be told, and `****`.
fn unparsed(s: &str) -> String {
    let (scheme, rest) = match s.split_once("://") {
        Some((scheme, rest)) if plain(scheme) => (Some(scheme), rest),
        _ => (None, s),
    };
    let host = match scheme {
        // After the last '@' up to the port, path or query.
        Some(_) => rest
            .rsplit('@')
            .next()
            .and_then(|h| h.split([':', '/', '?', '#', ',']).next()),
        // `host=...` of a key/value string.
        None => rest
            .split_whitespace()
            .find_map(|pair| pair.strip_prefix("host=")),
    }
    .filter(|h| {
        !h.is_empty()
            && h.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
    });
    match (scheme, host) {
        (Some(scheme), Some(h)) => format!("{scheme}://{MASK}@{h}/{MASK}"),
        (Some(scheme), None) => format!("{scheme}://{MASK}"),
        (None, Some(h)) => format!("host={h} {MASK}"),
        (None, None) => MASK.to_owned(),
    }
}

/// Whether `s` can be shown as it is: letters, digits and `.-_~%+`.
fn plain(s: &str) -> bool {
    s.chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '~' | '%' | '+'))
}

fn known_key(k: &str) -> bool {
    conninfo::LIBPQ_KEYS.contains(&k)
}

fn quote_keyvalue(v: &str) -> String {
    if !v.is_empty()
        && !v
            .chars()
            .any(|c| c.is_whitespace() || c == '\\' || c == '\'')
    {
        v.to_owned()
    } else {
        format!("'{}'", v.replace('\\', "\\\\").replace('\'', "\\'"))
    }
}

fn is_secret_key(k: &str) -> bool {
    let k = k.to_ascii_lowercase();
    k.contains("password")
        || k == "pass"
        || k == "api_key"
        || k == "apikey"
        || k.contains("secret")
        || k.contains("token")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_passwords_in_every_form() {
        assert_eq!(
            mask_url("postgres://app:s3cr%21t@db.example:5432/rag"),
            "postgres://app:****@db.example:5432/rag"
        );
        assert_eq!(
            mask_url("postgres://app@db/rag?password=hunter2&sslmode=require"),
            "postgres://app@db/rag?password=****&sslmode=require"
        );
        assert_eq!(
            mask_url("host=db user=app password=hunter2 dbname=rag"),
            "host=db user=app password=**** dbname=rag"
        );
        assert_eq!(mask_url("postgres://app@db/rag"), "postgres://app@db/rag");
        assert_eq!(mask_url("plainsecret"), MASK);
    }

    #[test]
    fn unencoded_special_characters_in_passwords_are_masked() {
        for pw in ["pa#ss?wo/rd", "p@ss:w%rd#?/", "Sup3rS3cretPw", "a b", "x@y"] {
            for url in [
                format!("postgres://app:{pw}@db.example:5432/rag?sslmode=require"),
                format!("postgresql://app:{pw}@db.example/rag"),
                format!("postgres://app:{pw}@127.0.0.1:99999/db?sslmode=disable"),
                format!("postgres://app:{pw}@h:notaport/db?sslmode=require"),
                format!("postgres://app:{pw}@/db?host=/tmp"),
                format!("host=h user=app password='{pw}' sslmode=require"),
                format!("host=h password={pw} bogus"),
            ] {
                let shown = mask_url(&url);
                assert!(!shown.contains(pw), "{url} -> {shown}");
                assert!(shown.contains(MASK), "{url} -> {shown}");
            }
        }
        assert_eq!(
            mask_url("postgres://app:pa#ss?wo/rd@db.example:5432/rag?sslmode=require"),
            "postgres://app:****@db.example:5432/rag?sslmode=require"
        );
        assert_eq!(
            mask_url("postgres://app:Sup3rS3cretPw@127.0.0.1:99999/db?sslmode=disable"),
            "postgres://app:****@127.0.0.1:99999/db?sslmode=disable"
        );
    }

    #[test]
    fn what_cannot_be_parsed_shows_only_the_host() {
        assert_eq!(
            mask_url("postgres://app:pw@h:notaport/db?sslmode=require"),
            "postgres://****@h/****"
        );
        assert_eq!(
            mask_url("postgres://app:secret/db"),
            "postgres://****@app/****"
        );
        assert_eq!(mask_url("host=h password='open"), "host=h ****");
        assert_eq!(mask_url("abcDEF=="), MASK, "an API key with padding");
        assert_eq!(mask_url("token=abc other=def"), MASK);
        assert_eq!(mask_url("sk-live-123"), MASK);
        assert_eq!(
            mask_url("postgres://h/db?sslpassword=x&application_name=a"),
            "postgres://h/db?sslpassword=****&application_name=a"
        );
    }

    #[test]
    fn sensitive_never_prints_its_value() {
        let s = Sensitive::new("postgres://u:hunter2@h/db");
        assert!(!format!("{s}").contains("hunter2"));
        assert!(!format!("{s:?}").contains("hunter2"));
        assert_eq!(s.expose(), "postgres://u:hunter2@h/db");
    }
}
