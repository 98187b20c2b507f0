//! What the PostgreSQL catalog tests share: the server from `deploy/servers.sh start`, and a
//! fresh schema per catalog, dropped when the test ends.
#![allow(dead_code)]

use reclife::catalog::{PgCatalog, PgOptions};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;

/// `RECLIFE_TEST_PG`, or `None` (skip) when unset; with `CI` or `RECLIFE_REQUIRE_SERVERS` set,
/// a missing server fails the test instead.
pub fn pg_server() -> Option<String> {
    match std::env::var("RECLIFE_TEST_PG") {
        Ok(v) if !v.is_empty() => Some(v),
        _ => {
            let required = ["CI", "RECLIFE_REQUIRE_SERVERS"]
                .iter()
                .any(|k| std::env::var(k).is_ok_and(|v| !v.is_empty() && v != "0" && v != "false"));
            assert!(
                !required,
                "RECLIFE_TEST_PG is not set but the test servers are required (CI / RECLIFE_REQUIRE_SERVERS): \
                 run `eval \"$(bash deploy/servers.sh start)\"` first"
            );
            eprintln!("skipped: RECLIFE_TEST_PG is not set (eval \"$(bash deploy/servers.sh start)\" to run it)");
            None
        }
    }
}

/// A schema name unique to this process and call.
pub fn unique_schema(tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("t_{tag}_{}_{}_{}", std::process::id(), nanos % 1_000_000_000, N.fetch_add(1, Ordering::SeqCst))
}

/// Fresh catalogs in schemas of their own; every schema is dropped when this is dropped.
pub struct Schemas {
    server: String,
    made: Mutex<Vec<String>>,
}

impl Schemas {
    pub fn new(server: &str) -> Schemas {
        Schemas { server: server.to_string(), made: Mutex::new(Vec::new()) }
    }

    pub fn options(&self, schema: &str) -> PgOptions {
        PgOptions::new(&self.server, None).expect("RECLIFE_TEST_PG parses").with_schema(schema).with_pool_size(4)
    }

    pub fn fresh(&self) -> PgCatalog {
        let name = unique_schema("c");
        let c = PgCatalog::open(&self.options(&name)).expect("open a fresh PostgreSQL catalog");
        self.made.lock().unwrap().push(name);
        c
    }
}

impl Drop for Schemas {
    fn drop(&mut self) {
        for s in self.made.lock().unwrap().drain(..) {
            if let Ok(c) = PgCatalog::open(&self.options(&s)) {
                let _ = c.drop_schema();
            }
        }
    }
}
