//! A real HTTP server on 127.0.0.1 (an ephemeral port), serving pages, documents, redirects,
//! a slow endpoint, oversized bodies and sitemaps. Each test starts its own.

use std::convert::Infallible;
use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::Path;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use bytes::Bytes;

use crate::files::{self, EN_1, VI_1, VI_2};

pub struct Server {
    pub addr: SocketAddr,
    pub base: String,
}

impl Server {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }
}

pub const PAGE: &str = "<!doctype html><html><head><title>Trang</title><style>p{}</style>\
    <script>tracking()</script></head><body><nav>Menu Trang chủ</nav><main><h1>Giới thiệu</h1>\
    <p>Xin chào! Đây là tài liệu tiếng Việt có dấu đầy đủ.</p>\
    <p>Hello! This is an English document about vector stores.</p></main>\
    <footer>Bản quyền</footer></body></html>";

fn typed(ct: &'static str, body: impl Into<Body>) -> Response {
    ([(header::CONTENT_TYPE, ct)], body.into()).into_response()
}

fn urlset(urls: &[String]) -> String {
    let items: String = urls
        .iter()
        .map(|u| format!("<url><loc>{u}</loc></url>"))
        .collect();
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<urlset xmlns=\"http://www.sitemaps.org/schemas/sitemap/0.9\">{items}</urlset>"
    )
}

pub async fn start() -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let base = format!("http://{addr}");
    let port = addr.port();

    let b = base.clone();
    let index = move || {
        let b = b.clone();
        async move {
            typed(
                "application/xml",
                format!(
                    "<?xml version=\"1.0\"?><sitemapindex xmlns=\"http://www.sitemaps.org/schemas/sitemap/0.9\">\
                     <sitemap><loc>{b}/sitemaps/one.xml.gz</loc></sitemap>\
                     <sitemap><loc>{b}/sitemaps/two.xml.gz</loc></sitemap>\
                     <sitemap><loc>{b}/sitemaps/missing.xml</loc></sitemap></sitemapindex>"
                ),
            )
        }
    };
    let b = base.clone();
    let one = move || {
        let b = b.clone();
        async move {
            let urls: Vec<String> = (1..=3).map(|i| format!("{b}/p/{i}")).collect();
            typed("application/x-gzip", files::gzip(urlset(&urls).as_bytes()))
        }
    };
    let b = base.clone();
    let two = move || {
        let b = b.clone();
        async move {
            let urls: Vec<String> = [3, 4, 5].iter().map(|i| format!("{b}/p/{i}")).collect();
            typed(
                "application/octet-stream",
                files::gzip(urlset(&urls).as_bytes()),
            )
        }
    };
    let b = base.clone();
    let plain_sitemap = move || {
        let b = b.clone();
        async move {
            typed(
                "text/xml",
                urlset(&[format!("{b}/p/1"), format!("{b}/p/2")]),
            )
        }
    };
    let internal = format!("http://internal.test:{port}/page.html");

    let app = Router::new()
        .route(
            "/page.html",
            get(|| async { typed("text/html; charset=utf-8", PAGE) }),
        )
        .route(
            "/files/doc.pdf",
            get(|| async { typed("application/pdf", files::pdf(&[&[VI_1], &[EN_1]])) }),
        )
        .route(
            "/files/report",
            get(|| async {
                typed(
                    "application/octet-stream",
                    files::docx(&[VI_2, EN_1], [["a", "b"], ["c", "d"]]),
                )
            }),
        )
        .route(
            "/files/latin1.txt",
            get(|| async {
                let text = "Déjà vu: café, crème brûlée et garçon. ".repeat(20);
                let (b, _, _) = encoding_rs::WINDOWS_1252.encode(&text);
                typed("text/plain", b.into_owned())
            }),
        )
        .route("/redirect", get(|| async { Redirect::to("/page.html") }))
        .route("/loop", get(|| async { Redirect::to("/loop") }))
        .route(
            "/to-metadata",
            get(|| async { Redirect::temporary("http://169.254.169.254/latest/meta-data/") }),
        )
        .route(
            "/to-internal",
            get(move || {
                let to = internal.clone();
                async move { Redirect::temporary(&to) }
            }),
        )
        .route(
            "/to-file",
            get(|| async { Redirect::temporary("file:///etc/passwd") }),
        )
        .route(
            "/slow",
            get(|| async {
                std::future::pending::<()>().await;
                "never"
            }),
        )
        .route(
            "/big",
            get(|| async { typed("text/plain", vec![b'a'; 2 << 20]) }),
        )
        .route(
            "/big-chunked",
            get(|| async {
                let pieces =
                    (0..64).map(|_| Ok::<_, Infallible>(Bytes::from(vec![b'b'; 32 << 10])));
                typed(
                    "text/plain",
                    Body::from_stream(futures_util::stream::iter(pieces)),
                )
            }),
        )
        .route(
            "/ua",
            get(|headers: HeaderMap| async move {
                let ua = headers
                    .get(header::USER_AGENT)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("none")
                    .to_owned();
                typed("text/plain", ua)
            }),
        )
        .route(
            "/gzip-encoded",
            get(|| async {
                (
                    [
                        (header::CONTENT_TYPE, "text/html"),
                        (header::CONTENT_ENCODING, "gzip"),
                    ],
                    files::gzip(PAGE.as_bytes()),
                )
                    .into_response()
            }),
        )
        .route("/sitemap_index.xml", get(index))
        .route("/sitemaps/one.xml.gz", get(one))
        .route("/sitemaps/two.xml.gz", get(two))
        .route("/plain-sitemap.xml", get(plain_sitemap))
        .route(
            "/p/{n}",
            get(|Path(n): Path<u32>| async move {
                typed(
                    "text/html",
                    format!("<html><body><p>Trang số {n}. Page number {n}.</p></body></html>"),
                )
            }),
        )
        .fallback(|| async { (StatusCode::NOT_FOUND, "not here") });

    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Server { addr, base }
}
