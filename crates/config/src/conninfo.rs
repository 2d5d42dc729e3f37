//! Reading PostgreSQL connection strings the way users actually write them, for masking and for
//! connecting alike, so that what is hidden is exactly what is used as the password.
//!
//! URLs (`postgres://user:password@host:port/db?key=value`) are split at the LAST `@` that is
//! followed by a valid host list: a password may then hold `#`, `?`, `/`, `:` or `@` without
//! being percent-encoded (an `@` inside a query value must then be written `%40`). Key/value
//! strings (`host=db password='a b'`) follow libpq's quoting rules.

use std::borrow::Cow;

/// A URL cut into its parts; every part is a slice of the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlParts<'a> {
    /// `postgres`, `postgresql`, ...
    pub scheme: &'a str,
    /// The user name (still percent-encoded), when the URL has user information.
    pub user: Option<&'a str>,
    /// The password (still percent-encoded), when the URL has one.
    pub password: Option<&'a str>,
    /// `host[:port]`, or several separated by commas; may be empty (`postgres:///db`).
    pub hosts: &'a str,
    /// Everything after the hosts: `/db?key=value` (a `#fragment` included).
    pub rest: &'a str,
}

impl UrlParts<'_> {
    /// The path without its leading `/` and the query (without `?`), fragment dropped.
    pub fn path_and_query(&self) -> (Option<&str>, Option<&str>) {
        let rest = self.rest.split('#').next().unwrap_or_default();
        let (path, query) = match rest.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (rest, None),
        };
        (path.strip_prefix('/'), query)
    }
}

/// Splits `scheme://[user[:password]@]hosts[/path][?query]`; `None` when `s` has no scheme or
/// no `@`/host split gives a valid host list.
pub fn split_url(s: &str) -> Option<UrlParts<'_>> {
    let (scheme, rest) = s.split_once("://")?;
    let mut chars = scheme.chars();
    let scheme_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !scheme_ok {
        return None;
    }
    // Candidates for the end of the user information, last first; then none at all.
    let ats = rest.match_indices('@').map(|(i, _)| Some(i)).rev();
    for at in ats.chain(std::iter::once(None)) {
        let (userinfo, after) = match at {
            Some(i) => (Some(&rest[..i]), &rest[i + 1..]),
            None => (None, rest),
        };
        let end = after.find(['/', '?', '#']).unwrap_or(after.len());
        let hosts = &after[..end];
        if !valid_hosts(hosts) {
            continue;
        }
        let (user, password) = match userinfo {
            Some(u) => match u.split_once(':') {
                Some((user, pw)) => (Some(user), Some(pw)),
                None => (Some(u), None),
            },
            None => (None, None),
        };
        return Some(UrlParts {
            scheme,
            user,
            password,
            hosts,
            rest: &after[end..],
        });
    }
    None
}

/// Whether `s` is `host[:port]` items separated by commas (or empty), hosts being names, IPv4
/// addresses, `[IPv6]` or percent-encoded socket paths.
fn valid_hosts(s: &str) -> bool {
    if s.is_empty() {
        return true;
    }
    s.split(',').all(|item| {
        let (host, port) = if let Some(inner) = item.strip_prefix('[') {
            let Some((v6, after)) = inner.split_once(']') else {
                return false;
            };
            if v6.is_empty()
                || !v6
                    .chars()
                    .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
            {
                return false;
            }
            match after {
                "" => ("v6", None),
                p => match p.strip_prefix(':') {
                    Some(p) => ("v6", Some(p)),
                    None => return false,
                },
            }
        } else {
            match item.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (item, None),
            }
        };
        let host_ok = !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '%'));
        let port_ok = port.is_none_or(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()));
        host_ok && port_ok
    })
}

/// The URL with its user name and password percent-encoded where they hold characters a
/// standard URL parser would take as delimiters (`#?/@:[]` and the like), so that
/// `postgres://app:pa#ss?wo/rd@host/db` connects with the password `pa#ss?wo/rd`. `%` is kept:
/// `%40` stays an encoded `@`. Anything that isn't a URL comes back unchanged.
pub fn encode_userinfo(s: &str) -> Cow<'_, str> {
    let Some(parts) = split_url(s) else {
        return Cow::Borrowed(s);
    };
    let Some(user) = parts.user else {
        return Cow::Borrowed(s);
    };
    let mut out = format!("{}://{}", parts.scheme, encode_component(user));
    if let Some(pw) = parts.password {
        out.push(':');
        out.push_str(&encode_component(pw));
    }
    out.push('@');
    out.push_str(parts.hosts);
    out.push_str(parts.rest);
    if out == s {
        Cow::Borrowed(s)
    } else {
        Cow::Owned(out)
    }
}

fn encode_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        let keep = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'.'
                    | b'_'
                    | b'~'
                    | b'%'
                    | b'!'
                    | b'$'
                    | b'&'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b','
                    | b';'
                    | b'='
            );
        if keep {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Splits a libpq key/value string (`host=db port=5432 password='a b'`) into pairs, values
/// unquoted; `None` when it doesn't follow libpq's syntax.
pub fn parse_keyvalue(s: &str) -> Option<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut it = s.chars().peekable();
    loop {
        while it.next_if(|c| c.is_whitespace()).is_some() {}
        if it.peek().is_none() {
            return Some(out);
        }
        let mut key = String::new();
        while let Some(c) = it.next_if(|c| c.is_ascii_alphanumeric() || *c == '_') {
            key.push(c);
        }
        while it.next_if(|c| c.is_whitespace()).is_some() {}
        if key.is_empty() || it.next() != Some('=') {
            return None;
        }
        while it.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if it.next_if_eq(&'\'').is_some() {
            loop {
                match it.next()? {
                    '\'' => break,
                    '\\' => value.push(it.next()?),
                    c => value.push(c),
                }
            }
        } else {
            while let Some(c) = it.next_if(|c| !c.is_whitespace()) {
                if c == '\\' {
                    value.push(it.next()?);
                } else {
                    value.push(c);
                }
            }
        }
        out.push((key, value));
    }
}

/// libpq's connection keywords: what a key/value string may hold.
pub const LIBPQ_KEYS: &[&str] = &[
    "host",
    "hostaddr",
    "port",
    "dbname",
    "user",
    "password",
    "passfile",
    "require_auth",
    "channel_binding",
    "connect_timeout",
    "client_encoding",
    "options",
    "application_name",
    "fallback_application_name",
    "keepalives",
    "keepalives_idle",
    "keepalives_interval",
    "keepalives_count",
    "tcp_user_timeout",
    "replication",
    "gssencmode",
    "sslmode",
    "sslnegotiation",
    "sslcompression",
    "sslcert",
    "sslkey",
    "sslpassword",
    "sslcertmode",
    "sslrootcert",
    "sslcrl",
    "sslcrldir",
    "sslsni",
    "requirepeer",
    "ssl_min_protocol_version",
    "ssl_max_protocol_version",
    "krbsrvname",
    "gsslib",
    "gssdelegation",
    "service",
    "target_session_attrs",
    "load_balance_hosts",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_ends_at_the_last_at_before_a_valid_host() {
        let p = split_url("postgres://app:pa#ss?wo/rd@host:5433/db?sslmode=require").unwrap();
        assert_eq!(p.user, Some("app"));
        assert_eq!(p.password, Some("pa#ss?wo/rd"));
        assert_eq!(p.hosts, "host:5433");
        assert_eq!(p.path_and_query(), (Some("db"), Some("sslmode=require")));

        let p = split_url("postgres://u:p@ss:w@rd@h1,h2:6432/db").unwrap();
        assert_eq!(p.password, Some("p@ss:w@rd"));
        assert_eq!(p.hosts, "h1,h2:6432");

        let p = split_url("postgres://[::1]:5432/db").unwrap();
        assert_eq!((p.user, p.hosts), (None, "[::1]:5432"));
        let p = split_url("postgresql:///db?host=/tmp").unwrap();
        assert_eq!(p.hosts, "");

        // A port that isn't a number: nothing splits into a valid host list.
        assert_eq!(split_url("postgres://app:secret/db"), None);
        assert_eq!(split_url("host=h password=x"), None);
    }

    #[test]
    fn userinfo_is_encoded_for_strict_parsers() {
        assert_eq!(
            encode_userinfo("postgres://app:pa#ss?wo/rd@h/db?sslmode=require"),
            "postgres://app:pa%23ss%3Fwo%2Frd@h/db?sslmode=require"
        );
        assert_eq!(
            encode_userinfo("postgres://u:p@s:s%40x@h/db"),
            "postgres://u:p%40s%3As%40x@h/db"
        );
        assert!(matches!(
            encode_userinfo("postgres://u:plain@h/db"),
            Cow::Borrowed(_)
        ));
        assert_eq!(encode_userinfo("host=h"), "host=h");
    }

    #[test]
    fn keyvalue_strings_follow_libpq_quoting() {
        let kv =
            parse_keyvalue("host=db  port = 5432 password='it\\'s a secret' user=a\\ b").unwrap();
        assert_eq!(
            kv,
            vec![
                ("host".into(), "db".into()),
                ("port".into(), "5432".into()),
                ("password".into(), "it's a secret".into()),
                ("user".into(), "a b".into()),
            ]
        );
        assert_eq!(parse_keyvalue("password='unterminated"), None);
        assert_eq!(parse_keyvalue("justtext"), None);
        assert_eq!(parse_keyvalue(""), Some(vec![]));
    }
}
