//! Keeping secrets out of output: connection strings are shown with the password masked and
//! sensitive strings can't be printed by accident.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

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

/// Masks whatever in `s` could be a secret: the password of a URL (`postgres://u:pw@h/db`), a
/// `password=...` pair of a key/value connection string, or, for anything else, the whole value.
pub fn mask_url(s: &str) -> String {
    if s.is_empty() {
        return String::new();
    }
    if let Ok(mut url) = url::Url::parse(s) {
        if url.has_host() || s.contains("://") {
            let had_password = url.password().is_some();
            if had_password {
                // Replacing the password can only fail for URLs that cannot have one, which
                // `had_password` rules out.
                let _ = url.set_password(Some(MASK));
            }
            let mut pairs: Vec<(String, String)> = Vec::new();
            let mut masked_query = false;
            for (k, v) in url.query_pairs() {
                if is_secret_key(&k) {
                    masked_query = true;
                    pairs.push((k.into_owned(), MASK.to_owned()));
                } else {
                    pairs.push((k.into_owned(), v.into_owned()));
                }
            }
            if masked_query {
                url.query_pairs_mut().clear().extend_pairs(pairs);
            }
            return url.to_string();
        }
    }
    if s.contains('=') {
        // libpq key/value form: host=... password=...
        return s
            .split_whitespace()
            .map(|pair| match pair.split_once('=') {
                Some((k, _)) if is_secret_key(k) => format!("{k}={MASK}"),
                _ => pair.to_owned(),
            })
            .collect::<Vec<_>>()
            .join(" ");
    }
    MASK.to_owned()
}

fn is_secret_key(k: &str) -> bool {
    let k = k.to_ascii_lowercase();
    k == "password" || k == "pass" || k == "api_key" || k == "apikey" || k.ends_with("secret")
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
    fn sensitive_never_prints_its_value() {
        let s = Sensitive::new("postgres://u:hunter2@h/db");
        assert!(!format!("{s}").contains("hunter2"));
        assert!(!format!("{s:?}").contains("hunter2"));
        assert_eq!(s.expose(), "postgres://u:hunter2@h/db");
    }
}
