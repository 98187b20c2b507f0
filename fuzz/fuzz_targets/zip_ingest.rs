//! Arbitrary bytes as a GIR backup zip given to `reclife ingest` / `restore`: recordings in or
//! rejected by name, never a panic, nothing outside the data folder.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

struct Env {
    _dir: tempfile::TempDir,
    zip: std::path::PathBuf,
    ctx: reclife::config::Context,
    rt: tokio::runtime::Runtime,
}

fn env() -> &'static Env {
    static ENV: OnceLock<Env> = OnceLock::new();
    ENV.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let ctx = reclife::config::Context::open(
            &dir.path().join("data"),
            reclife::config::Config::default(),
            reclife::config::Clock::system(),
        )
        .unwrap();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        Env { zip: dir.path().join("input.zip"), _dir: dir, ctx, rt }
    })
}

fuzz_target!(|data: &[u8]| {
    let e = env();
    std::fs::write(&e.zip, data).unwrap();
    let _ = e.rt.block_on(reclife::ingest::ingest_paths(&e.ctx, &[e.zip.clone()], &reclife::progress::NoProgress));
});
