//! One PostgreSQL server and one moto server for every test of a run.
//!
//! `scripts/test` starts both once and passes their addresses in `RAGSHIFT_TEST_PG_URL` and
//! `RAGSHIFT_TEST_MOTO_URL`. Without them (a plain `cargo test`), each test process starts its
//! own on first use; they go away when the process exits, however it exits (see the reaper in
//! `process.rs`), since Rust never drops statics.

use std::sync::OnceLock;

use crate::env;
use crate::moto::{MotoEndpoint, MotoServer};
use crate::pg_cluster::PgCluster;
use crate::pg_server::PgServer;

enum SharedPg {
    External(PgServer),
    Owned(PgCluster),
}

enum SharedMoto {
    External(MotoEndpoint),
    Owned(MotoServer),
}

/// The PostgreSQL + pgvector server shared by all tests of this run: the one named by
/// `RAGSHIFT_TEST_PG_URL`, or else one started for this process on first use.
///
/// Create a database per test with [`PgServer::fresh_database`].
///
/// # Panics
/// When `RAGSHIFT_TEST_PG_URL` is malformed or no cluster can be started.
pub fn shared_pg() -> &'static PgServer {
    static SHARED: OnceLock<SharedPg> = OnceLock::new();
    let shared = SHARED.get_or_init(|| match env::var(env::TEST_PG_URL) {
        Some(url) => SharedPg::External(
            PgServer::from_url(&url)
                .unwrap_or_else(|err| panic!("{} is not usable: {err:#}", env::TEST_PG_URL)),
        ),
        None => SharedPg::Owned(PgCluster::start()),
    });
    match shared {
        SharedPg::External(server) => server,
        SharedPg::Owned(cluster) => cluster.server(),
    }
}

/// The moto server shared by all tests of this run: the one named by `RAGSHIFT_TEST_MOTO_URL`,
/// or else one started for this process on first use.
///
/// Keep tests apart by naming their buckets and tables with [`unique_name`](crate::unique_name).
///
/// # Panics
/// When no moto server can be started.
pub fn shared_moto() -> &'static MotoEndpoint {
    static SHARED: OnceLock<SharedMoto> = OnceLock::new();
    let shared = SHARED.get_or_init(|| match env::var(env::TEST_MOTO_URL) {
        Some(url) => SharedMoto::External(MotoEndpoint::from_url(&url)),
        None => SharedMoto::Owned(MotoServer::start()),
    });
    match shared {
        SharedMoto::External(endpoint) => endpoint,
        SharedMoto::Owned(server) => server.endpoint(),
    }
}
