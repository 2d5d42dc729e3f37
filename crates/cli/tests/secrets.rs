//! Passwords never leave ragshift: the real binary, given passwords full of URL delimiters
//! (`#?/@:%`, unencoded, followed by `?sslmode=require`) through flags, variables and the
//! configuration file, never prints them: not in `config show` (text and JSON), not in the error
//! of a connection that fails (bad port, nothing listening, wrong password), not in a TOML
//! syntax error, not in `-vv` or full trace logs. And such a password still connects.

use std::path::Path;
use std::process::Output;

use ragshift_testkit::{shared_pg, unique_name};

/// A password with every character that ends a URL's user information early.
const PASSWORD: &str = "Pw#1?x/y@z:w%q";

/// Runs ragshift in `dir` with only the given RAGSHIFT_* variables.
fn ragshift(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    ragshift_testkit::env::run_isolated_with(env!("CARGO_BIN_EXE_ragshift"), dir, args, env)
}

use ragshift_testkit::env::all_output;
use ragshift_testkit::env::assert_exit;
use ragshift_testkit::sql::scalar;

/// Fails naming the case when `password` (or its percent-encoded form) shows up anywhere.
fn assert_hidden(case: &str, out: &Output, password: &str) {
    let text = all_output(out);
    let encoded = ragshift_testkit::percent_encoded(password);
    for secret in [password, encoded.as_str()] {
        assert!(
            !text.contains(secret),
            "{case}: the password leaked:\n{text}"
        );
    }
    // A distinctive part of it, in case something printed it in pieces.
    assert!(
        !text.contains("w%q"),
        "{case}: part of the password leaked:\n{text}"
    );
}

fn url(user: &str, password: &str, host: &str, port: &str) -> String {
    format!("postgres://{user}:{password}@{host}:{port}/postgres?sslmode=disable")
}

#[test]
fn config_show_masks_passwords_from_flags_variables_and_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let in_file = "Fi#le?pw/x@y:z%q";
    std::fs::write(
        dir.path().join("ragshift.toml"),
        format!(
            "[source]\nurl = \"postgres://app:{in_file}@old.example:5432/rag?sslmode=require\"\n"
        ),
    )
    .unwrap();
    let flag_url = format!("postgres://app:{PASSWORD}@db.example:5432/rag?sslmode=require");
    let env_pw = "En#v?pw/x@y:z%q";
    let env_url = format!("postgres://app:{env_pw}@db.example/rag?sslmode=require");
    for json in [false, true] {
        let mut args = vec!["config", "show", "--target-url", &flag_url];
        if json {
            args.push("--json");
        }
        let out = ragshift(dir.path(), &args, &[]);
        assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));
        assert_hidden("config show --target-url", &out, PASSWORD);
        assert_hidden("config show [source] url", &out, in_file);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("postgres://app:****@db.example:5432/rag?sslmode=require"),
            "{text}"
        );
        assert!(
            text.contains("postgres://app:****@old.example:5432/rag?sslmode=require"),
            "{text}"
        );

        let mut args = vec!["config", "show", "-vv"];
        if json {
            args.push("--json");
        }
        let out = ragshift(dir.path(), &args, &[("RAGSHIFT_TARGET_URL", &env_url)]);
        assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));
        assert_hidden("config show RAGSHIFT_TARGET_URL", &out, env_pw);
    }

    // A key/value connection string, quoted as libpq wants it.
    let kv = format!("host=db.example user=app password='{PASSWORD}' sslmode=require");
    let out = ragshift(dir.path(), &["config", "show", "--target-url", &kv], &[]);
    assert_hidden("config show key/value", &out, PASSWORD);
    assert!(all_output(&out).contains("password=****"));
}

#[test]
fn failed_connections_never_print_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let pg = shared_pg();
    // A port where nothing listens: bound and released.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let cases = [
        ("bad port", url(pg.user(), PASSWORD, "127.0.0.1", "99999")),
        (
            "port that isn't a number",
            url(pg.user(), PASSWORD, "127.0.0.1", "port"),
        ),
        (
            "nothing listening",
            url(pg.user(), PASSWORD, "127.0.0.1", &closed),
        ),
        (
            "wrong password",
            url(pg.user(), PASSWORD, pg.host(), &pg.port().to_string()),
        ),
    ];
    for (case, target) in &cases {
        for verbosity in ["-v", "-vv"] {
            let out = ragshift(
                dir.path(),
                &["init-target", verbosity, "--target-url", target],
                &[],
            );
            assert_eq!(out.status.code(), Some(2), "{case}: {}", all_output(&out));
            assert_hidden(case, &out, PASSWORD);
        }
        // Every crate's logs at trace level (tokio-postgres, rustls, ...).
        let out = ragshift(
            dir.path(),
            &["init-target"],
            &[("RAGSHIFT_TARGET_URL", target), ("RAGSHIFT_LOG", "trace")],
        );
        assert_eq!(out.status.code(), Some(2), "{case}: {}", all_output(&out));
        assert_hidden(case, &out, PASSWORD);
    }
    // The example, verbatim: the error names the bad port, not the password.
    let example = "postgres://app:Sup3rS3cretPw@127.0.0.1:99999/db?sslmode=disable";
    let out = ragshift(dir.path(), &["init-target", "--target-url", example], &[]);
    assert_exit(&out, 2);
    let text = all_output(&out);
    assert!(!text.contains("Sup3rS3cretPw"), "{text}");
    assert!(text.contains("127.0.0.1:99999"), "{text}");
    let wrong = &cases[3].1;
    let out = ragshift(dir.path(), &["init-target", "--target-url", wrong], &[]);
    let text = all_output(&out);
    assert!(
        text.contains("password") && text.contains("****"),
        "says what failed: {text}"
    );
}

#[tokio::test]
async fn an_unencoded_password_with_delimiters_connects() {
    let dir = tempfile::tempdir().unwrap();
    let pg = shared_pg();
    let db_url = pg.fresh_database("secrets_pw");
    let role = unique_name("pwrole");
    let admin = pg.connect(&db_url).await;
    let db = admin
        .query_one("SELECT current_database()", &[])
        .await
        .unwrap()
        .get::<_, String>(0);
    admin
        .batch_execute(&format!(
            "CREATE ROLE {role} LOGIN PASSWORD '{PASSWORD}';
             CREATE EXTENSION vector;
             GRANT ALL ON DATABASE {db} TO {role};
             GRANT ALL ON SCHEMA public TO {role};"
        ))
        .await
        .unwrap();
    let target = format!(
        "postgres://{role}:{PASSWORD}@{}:{}/{db}?sslmode=disable",
        pg.host(),
        pg.port()
    );
    let out = ragshift(
        dir.path(),
        &["init-target", "-vv", "--json", "--target-url", &target],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));
    assert_hidden("a successful run", &out, PASSWORD);
    assert_eq!(
        scalar::<String>(
            &admin,
            "SELECT tableowner::text FROM pg_tables WHERE tablename = 'items'",
        )
        .await,
        role,
        "the table was created by the role with that password"
    );
}

#[test]
fn toml_syntax_errors_do_not_quote_the_password_line() {
    let dir = tempfile::tempdir().unwrap();
    for contents in [
        // An unterminated string, a missing quote, text after the value.
        format!("[target]\nurl = \"postgres://app:{PASSWORD}@db/rag?sslmode=require\n"),
        format!("[target]\nurl = postgres://app:{PASSWORD}@db/rag?sslmode=require\n"),
        format!("[target]\nurl = 'postgres://app:{PASSWORD}@db/rag?sslmode=require' oops\n"),
        format!("[target]\nsslmode = \"postgres://app:{PASSWORD}@db/rag?sslmode=require\"\n"),
    ] {
        std::fs::write(dir.path().join("ragshift.toml"), &contents).unwrap();
        for args in [&["config", "show"][..], &["init-target", "-vv"][..]] {
            let out = ragshift(dir.path(), args, &[]);
            assert_eq!(
                out.status.code(),
                Some(2),
                "{contents}: {}",
                all_output(&out)
            );
            assert_hidden(&contents, &out, PASSWORD);
            assert!(
                all_output(&out).contains("ragshift.toml"),
                "names the file: {}",
                all_output(&out)
            );
        }
    }
}
