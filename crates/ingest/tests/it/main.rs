//! Integration tests of ragshift-ingest, in one binary: loaders on real generated files,
//! fetching against a real HTTP server on loopback, SSRF rules, sitemaps, splitter properties
//! and streaming.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod files;
mod loaders;
mod preview;
mod server;
mod split;
mod web;
