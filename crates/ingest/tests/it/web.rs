//! URL sources, redirects, limits, SSRF rules and sitemaps against the loopback server.

use std::collections::HashMap;
use std::time::Duration;

use ragshift_ingest::{
    decide, AllowList, BotOutcome, ErrorKind, Fetcher, IngestOptions, IngestReport, Ingestor,
    LoaderKind, OutcomePolicy, SourceInput, SourceOutcome,
};
use ragshift_model::{Chunk, EmbeddingParams};

use crate::server::{self, Server};

fn loopback_opts() -> IngestOptions {
    IngestOptions {
        allow: AllowList::loopback(),
        request_timeout: Duration::from_secs(10),
        ..IngestOptions::default()
    }
}

async fn run(opts: IngestOptions, input: SourceInput) -> (IngestReport, Vec<Chunk>) {
    let ingestor = Ingestor::new(opts).unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<Chunk>>(2);
    let collector = tokio::spawn(async move {
        let mut all = Vec::new();
        while let Some(batch) = rx.recv().await {
            all.extend(batch);
        }
        all
    });
    let report = ingestor
        .ingest(input, &EmbeddingParams::default(), &tx)
        .await;
    drop(tx);
    (report, collector.await.unwrap())
}

fn only_error(report: &IngestReport) -> ErrorKind {
    assert_eq!(report.sources.len(), 1, "{report:?}");
    match &report.sources[0].outcome {
        SourceOutcome::Failed { error, .. } => error.kind.clone(),
        other => panic!("expected a failure, got {other:?}"),
    }
}

fn blocked_addr(kind: &ErrorKind) -> &str {
    match kind {
        ErrorKind::Blocked { addr, .. } => addr,
        other => panic!("expected Blocked, got {other:?}"),
    }
}

#[tokio::test]
async fn an_html_page_becomes_its_main_text() {
    let srv = server::start().await;
    let url = srv.url("/page.html");
    let (report, chunks) = run(loopback_opts(), SourceInput::Url(url.clone())).await;
    let r = &report.sources[0];
    assert_eq!(r.loader, Some(LoaderKind::Html));
    assert!(
        matches!(r.outcome, SourceOutcome::Loaded { chunks: 1, .. }),
        "{r:?}"
    );
    assert_eq!(chunks.len(), 1);
    assert_eq!(chunks[0].source, url);
    assert_eq!(
        chunks[0].text,
        "Giới thiệu\n\nXin chào! Đây là tài liệu tiếng Việt có dấu đầy đủ.\n\nHello! This is an English document about vector stores."
    );
}

#[tokio::test]
async fn documents_behind_urls_go_through_the_loaders() {
    let srv = server::start().await;
    for (path, kind, needle) in [
        ("/files/doc.pdf", LoaderKind::Pdf, "tiếng Việt"),
        ("/files/report", LoaderKind::Docx, "Phở bò"),
        ("/files/latin1.txt", LoaderKind::Text, "crème brûlée"),
        ("/gzip-encoded", LoaderKind::Html, "Giới thiệu"),
    ] {
        let (report, chunks) = run(loopback_opts(), SourceInput::Url(srv.url(path))).await;
        assert_eq!(report.sources[0].loader, Some(kind), "{path}: {report:?}");
        assert!(
            chunks.iter().any(|c| c.text.contains(needle)),
            "{path}: {chunks:?}"
        );
    }
    let (report, _) = run(
        loopback_opts(),
        SourceInput::Url(srv.url("/files/latin1.txt")),
    )
    .await;
    assert_eq!(
        report.sources[0].warnings,
        vec!["text was converted to UTF-8 from windows-1252".to_owned()]
    );
}

#[tokio::test]
async fn redirects_are_followed_up_to_the_limit() {
    let srv = server::start().await;
    let (report, chunks) = run(loopback_opts(), SourceInput::Url(srv.url("/redirect"))).await;
    assert!(report.sources[0].is_loaded());
    assert_eq!(
        chunks[0].source,
        srv.url("/redirect"),
        "chunks keep the bot's URL"
    );
    let (report, _) = run(loopback_opts(), SourceInput::Url(srv.url("/loop"))).await;
    assert_eq!(only_error(&report), ErrorKind::TooManyRedirects { max: 5 });
    let (report, _) = run(loopback_opts(), SourceInput::Url(srv.url("/to-file"))).await;
    assert!(matches!(only_error(&report), ErrorKind::InvalidUrl { .. }));
}

#[tokio::test]
async fn a_redirect_to_the_metadata_service_is_refused() {
    let srv = server::start().await;
    let (report, chunks) = run(loopback_opts(), SourceInput::Url(srv.url("/to-metadata"))).await;
    let kind = only_error(&report);
    assert_eq!(blocked_addr(&kind), "169.254.169.254");
    assert!(kind.to_string().contains("metadata"), "{kind}");
    assert!(chunks.is_empty());
}

#[tokio::test]
async fn a_redirect_to_a_name_resolving_to_a_blocked_address_is_refused() {
    let srv = server::start().await;
    // Only the server's own address is allowed; internal.test resolves to another loopback
    // address, which the rules refuse.
    let opts = IngestOptions {
        allow: AllowList {
            nets: vec![format!("{}/32", srv.addr.ip()).parse().unwrap()],
            hosts: vec![],
        },
        dns_overrides: HashMap::from([(
            "internal.test".to_owned(),
            vec!["127.0.0.2".parse().unwrap()],
        )]),
        ..loopback_opts()
    };
    let (report, _) = run(opts.clone(), SourceInput::Url(srv.url("/to-internal"))).await;
    assert_eq!(blocked_addr(&only_error(&report)), "127.0.0.2");
    // The same page is reachable directly.
    let (report, _) = run(opts, SourceInput::Url(srv.url("/page.html"))).await;
    assert!(report.sources[0].is_loaded());
}

#[tokio::test]
async fn loopback_is_refused_by_default_and_opened_by_the_allow_list() {
    let srv = server::start().await;
    let by_ip = SourceInput::Url(srv.url("/page.html"));
    let (report, _) = run(IngestOptions::default(), by_ip).await;
    assert_eq!(blocked_addr(&only_error(&report)), "127.0.0.1");

    let by_name = format!("http://localhost:{}/page.html", srv.addr.port());
    let (report, _) = run(IngestOptions::default(), SourceInput::Url(by_name.clone())).await;
    let kind = only_error(&report);
    assert!(
        matches!(kind, ErrorKind::Blocked { ref host, .. } if host == "localhost"),
        "{kind:?}"
    );

    let (report, _) = run(loopback_opts(), SourceInput::Url(by_name)).await;
    assert!(report.sources[0].is_loaded(), "{report:?}");
}

#[tokio::test]
async fn the_metadata_address_stays_blocked_whatever_loopback_allows() {
    let (report, _) = run(
        loopback_opts(),
        SourceInput::Url("http://169.254.169.254/latest/meta-data/iam/".into()),
    )
    .await;
    assert_eq!(blocked_addr(&only_error(&report)), "169.254.169.254");
    let (report, _) = run(
        loopback_opts(),
        SourceInput::Url("http://[fd00:ec2::254]/".into()),
    )
    .await;
    assert_eq!(blocked_addr(&only_error(&report)), "fd00:ec2::254");
}

#[tokio::test]
async fn a_slow_server_times_out() {
    let srv = server::start().await;
    let opts = IngestOptions {
        request_timeout: Duration::from_millis(500),
        ..loopback_opts()
    };
    let (report, _) = run(opts, SourceInput::Url(srv.url("/slow"))).await;
    assert_eq!(
        only_error(&report),
        ErrorKind::Timeout {
            after: Duration::from_millis(500)
        }
    );
}

#[tokio::test]
async fn oversized_bodies_are_refused_with_or_without_content_length() {
    let srv = server::start().await;
    let opts = IngestOptions {
        max_body_bytes: 1 << 20,
        ..loopback_opts()
    };
    for path in ["/big", "/big-chunked"] {
        let (report, _) = run(opts.clone(), SourceInput::Url(srv.url(path))).await;
        assert_eq!(
            only_error(&report),
            ErrorKind::TooLarge { limit: 1 << 20 },
            "{path}"
        );
    }
}

#[tokio::test]
async fn http_errors_name_the_status() {
    let srv = server::start().await;
    let (report, _) = run(loopback_opts(), SourceInput::Url(srv.url("/missing"))).await;
    assert_eq!(only_error(&report), ErrorKind::HttpStatus { status: 404 });
}

#[tokio::test]
async fn requests_carry_the_ragshift_user_agent() {
    let srv = server::start().await;
    let fetched = Fetcher::new(&loopback_opts())
        .unwrap()
        .get(&srv.url("/ua"))
        .await
        .unwrap();
    assert_eq!(
        std::str::from_utf8(&fetched.bytes).unwrap(),
        format!("ragshift/{}", env!("CARGO_PKG_VERSION"))
    );
}

#[tokio::test]
async fn youtube_is_an_unsupported_source_not_a_crash() {
    let (report, chunks) = run(
        IngestOptions::default(),
        SourceInput::Url("https://www.youtube.com/watch?v=dQw4w9WgXcQ".into()),
    )
    .await;
    let kind = only_error(&report);
    assert!(matches!(kind, ErrorKind::Unsupported { .. }), "{kind:?}");
    assert!(kind.to_string().starts_with("unsupported source: YouTube"));
    assert!(chunks.is_empty());
}

#[tokio::test]
async fn a_sitemap_index_with_gzipped_children_yields_every_page_once() {
    let srv = server::start().await;
    let index = srv.url("/sitemap_index.xml");
    let (report, chunks) = run(loopback_opts(), SourceInput::Sitemap(index.clone())).await;
    let loaded: Vec<&str> = report
        .sources
        .iter()
        .filter(|r| r.is_loaded())
        .map(|r| r.source.as_str())
        .collect();
    let want: Vec<String> = (1..=5).map(|i| srv.url(&format!("/p/{i}"))).collect();
    assert_eq!(loaded, want.iter().map(String::as_str).collect::<Vec<_>>());
    let failed: Vec<_> = report.sources.iter().filter(|r| !r.is_loaded()).collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].source, srv.url("/sitemaps/missing.xml"));
    assert!(report
        .sources
        .iter()
        .all(|r| r.sitemap.as_deref() == Some(index.as_str())));
    assert_eq!(chunks.len(), 5);
    assert!(chunks
        .iter()
        .any(|c| c.text == "Trang số 4. Page number 4." && c.source == want[3]));
    assert!(report.notes.is_empty());
}

#[tokio::test]
async fn the_page_cap_limits_a_sitemap_and_says_so() {
    let srv = server::start().await;
    let opts = IngestOptions {
        sitemap_page_cap: 3,
        ..loopback_opts()
    };
    let (report, chunks) = run(opts, SourceInput::Sitemap(srv.url("/sitemap_index.xml"))).await;
    assert_eq!(report.sources.iter().filter(|r| r.is_loaded()).count(), 3);
    assert_eq!(chunks.len(), 3);
    assert_eq!(report.notes.len(), 1);
    assert!(
        report.notes[0].contains("2 page(s) beyond the sitemap page cap"),
        "{:?}",
        report.notes
    );
}

#[tokio::test]
async fn a_url_source_serving_a_sitemap_is_expanded() {
    let srv = server::start().await;
    let (report, chunks) = run(
        loopback_opts(),
        SourceInput::Url(srv.url("/plain-sitemap.xml")),
    )
    .await;
    assert_eq!(report.sources.len(), 2);
    assert!(report.sources.iter().all(|r| r.is_loaded()));
    assert_eq!(chunks.len(), 2);
}

#[tokio::test]
async fn a_failed_url_fails_the_bot_unless_partial_is_allowed() {
    let srv = server::start().await;
    let ingestor = Ingestor::new(loopback_opts()).unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::channel(4);
    let drain = tokio::spawn(async move { while rx.recv().await.is_some() {} });
    let report = ingestor
        .ingest_all(
            vec![
                SourceInput::Url(srv.url("/page.html")),
                SourceInput::Url(srv.url("/gone")),
            ],
            &EmbeddingParams::default(),
            &tx,
        )
        .await;
    drop(tx);
    drain.await.unwrap();
    let BotOutcome::Failed { reason } = decide(&report.sources, OutcomePolicy::default()) else {
        panic!("a partial failure must fail the bot by default");
    };
    assert!(
        reason.contains(&srv.url("/gone")) && reason.contains("404"),
        "{reason}"
    );
    assert!(matches!(
        decide(
            &report.sources,
            OutcomePolicy {
                allow_partial: true
            }
        ),
        BotOutcome::Succeeded { warning: Some(_) }
    ));
}

#[allow(dead_code)]
fn _server_is_used(_: &Server) {}
