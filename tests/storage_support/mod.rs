//! What the storage tests share: the server environment printed by `deploy/servers.sh start`,
//! and a fresh location beneath it per test.
#![allow(dead_code)]

pub mod faults;

use reclife::storage::Location;

/// The location in `var`, or `None` (the test is skipped) when the servers are not running.
/// With `CI` or `RECLIFE_REQUIRE_SERVERS` set, a missing environment fails the test instead.
pub fn server_env(var: &str) -> Option<Location> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Some(Location::parse(&v).unwrap_or_else(|e| panic!("{var}: {e}"))),
        _ => {
            let required = ["CI", "RECLIFE_REQUIRE_SERVERS"]
                .iter()
                .any(|k| std::env::var(k).is_ok_and(|v| !v.is_empty() && v != "0" && v != "false"));
            assert!(
                !required,
                "{var} is not set but the test servers are required (CI / RECLIFE_REQUIRE_SERVERS): \
                 run `eval \"$(bash deploy/servers.sh start)\"` first"
            );
            eprintln!("skipped: {var} is not set (eval \"$(bash deploy/servers.sh start)\" to run it)");
            None
        }
    }
}

/// A new, empty location beneath `base`, unique to this test run.
pub fn fresh_location(base: &Location) -> Location {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let name = format!(
        "t{}-{}-{}",
        std::process::id(),
        nanos % 1_000_000_000_000,
        N.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
    );
    let uri = format!("{}/{name}", base.to_string().trim_end_matches('/'));
    Location::parse(&uri).unwrap()
}
