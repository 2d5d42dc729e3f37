//! The platform's database secret: Secrets Manager JSON with `host`, `port`, `username`,
//! `password` and `dbname` (RDS-generated secrets may lack `dbname`: `postgres` is used).

use ragshift_config::Sensitive;
use ragshift_store::DbSecretParts;
use serde::Deserialize;

use crate::{classify, AwsError, AwsErrorKind};

#[derive(Deserialize)]
struct RawSecret {
    host: String,
    port: Option<serde_json::Value>,
    username: String,
    password: String,
    dbname: Option<String>,
}

/// Parses the secret's JSON; errors never contain the secret's text.
pub fn parse_db_secret(arn: &str, json: &str) -> Result<DbSecretParts, AwsError> {
    let raw: RawSecret = serde_json::from_str(json).map_err(|e| {
        AwsError::new(
            AwsErrorKind::Invalid,
            format!(
                "secret {arn} is not the expected JSON with host, port, username, password, dbname (line {}, column {})",
                e.line(),
                e.column()
            ),
        )
    })?;
    let port = match raw.port {
        None => 5432,
        Some(serde_json::Value::Number(n)) => {
            n.as_u64().and_then(|p| u16::try_from(p).ok()).unwrap_or(0)
        }
        Some(serde_json::Value::String(s)) => s.trim().parse().unwrap_or(0),
        Some(_) => 0,
    };
    if port == 0 {
        return Err(AwsError::new(
            AwsErrorKind::Invalid,
            format!("secret {arn} has an invalid port"),
        ));
    }
    Ok(DbSecretParts {
        host: raw.host,
        port,
        username: raw.username,
        password: Sensitive::new(raw.password),
        dbname: raw.dbname.unwrap_or_else(|| "postgres".to_owned()),
    })
}

/// Reads and parses the secret `arn`.
pub async fn fetch_db_secret(
    sdk: &aws_config::SdkConfig,
    arn: &str,
) -> Result<DbSecretParts, AwsError> {
    let client = aws_sdk_secretsmanager::Client::new(sdk);
    let out = client
        .get_secret_value()
        .secret_id(arn)
        .send()
        .await
        .map_err(|e| classify(format!("reading secret {arn}"), &e))?;
    let text = out.secret_string().ok_or_else(|| {
        AwsError::new(
            AwsErrorKind::Invalid,
            format!("secret {arn} has no string value"),
        )
    })?;
    parse_db_secret(arn, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_json_in_the_platform_format() {
        let p = parse_db_secret(
            "arn:x",
            r#"{"host":"h","port":"5433","username":"u","password":"hunter2","dbname":"d","engine":"postgres"}"#,
        )
        .unwrap();
        assert_eq!(
            (p.host.as_str(), p.port, p.dbname.as_str()),
            ("h", 5433, "d")
        );
        let p = parse_db_secret(
            "arn:x",
            r#"{"host":"h","port":5432,"username":"u","password":"p"}"#,
        )
        .unwrap();
        assert_eq!(p.dbname, "postgres");
        let e = parse_db_secret("arn:x", r#"{"host":"h","password":"hunter2"}"#).unwrap_err();
        assert!(!e.to_string().contains("hunter2"));
        assert_eq!(e.kind, AwsErrorKind::Invalid);
    }
}
