//! Lifecycle figures against the tools users already have (run by `benches/lifecycle_bench.sh`).
//!
//!   cargo bench --bench lifecycle_compare -- backup MIB      # reclife backup vs zip -0 -r, cp -r
//!   cargo bench --bench lifecycle_compare -- plan N...       # plan time and max RSS at each N
//!   cargo bench --bench lifecycle_compare -- purge N         # reclife purge vs rm -rf
//!   cargo bench --bench lifecycle_compare -- screens N S     # plan of N calls, S screens: with vs without
//!                                                            # (SQLite, and PostgreSQL when RECLIFE_TEST_PG is set)
//!   cargo bench --bench lifecycle_compare -- rule-rss N...   # backup-then-purge rule: time, max RSS
//!
//! Data is generated straight into a data directory (catalog rows in batches, media files in the
//! local store's layout) under $BENCH_DIR (default: a temporary folder).

use reclife::catalog::{Catalog, PgCatalog, PgOptions, SqliteCatalog};
use reclife::model::Recording;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// The binary under test: `$RECLIFE_BIN` (the script copies its own build there, because a
/// shared target folder may be rebuilt by someone else meanwhile), else this build's.
fn bin() -> String {
    std::env::var("RECLIFE_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_reclife").to_string())
}
const NOW: &str = "2025-06-25T03:00:00Z";

fn doc(i: usize, size: usize) -> (String, String) {
    let id = format!("B{i:09}");
    // Spread over about three years so the scan covers many slices.
    let day = 30 + (i % 1000);
    let start = chrono::DateTime::parse_from_rfc3339(NOW).unwrap() - chrono::Duration::days(day as i64)
        + chrono::Duration::seconds((i % 86_000) as i64);
    let t = start.format("%Y-%m-%dT%H:%M:%S%.3f+0000");
    let mid = format!("{id}.mp3");
    let d = format!(
        r#"{{"id":"{id}","callUuid":"U{id}","startTime":"{t}","stopTime":"{t}","callType":"Inbound","region":"us","mediaFiles":[{{"mediaId":"{mid}","type":"audio/mp3","size":"{size}"}}]}}"#
    );
    (id, d)
}

/// `screens` screen recordings (metadata only), spread evenly over the first `n` calls: every
/// other one linked by callRecordingId, the rest by callUuid alone.
fn generate_screens(cat: &dyn Catalog, n: usize, screens: usize) {
    let step = (n / screens.max(1)).max(1);
    let mut batch = Vec::with_capacity(10_000);
    for k in 0..screens.min(n) {
        let i = k * step;
        let (call, d) = doc(i, 0);
        let v: serde_json::Value = serde_json::from_str(&d).unwrap();
        let t = v["startTime"].as_str().unwrap().to_string();
        let link =
            if k % 2 == 0 { format!(r#""callRecordingId":"{call}""#) } else { format!(r#""callUuid":"U{call}""#) };
        let sd = format!(
            r#"{{"id":"S{i:09}",{link},"startTime":"{t}","stopTime":"{t}","region":"us","mediaFiles":[{{"mediaId":"S{i:09}.mp4","type":"video/mp4","size":"0"}}]}}"#
        );
        batch.push(Recording::parse(&sd).unwrap());
        if batch.len() == 10_000 {
            cat.upsert_many(&batch).unwrap();
            batch.clear();
        }
    }
    cat.upsert_many(&batch).unwrap();
}

/// `n` recordings in `data`, each with one media file of `size` bytes (none with `size` 0).
fn generate(data: &Path, n: usize, size: usize) {
    generate_into(&SqliteCatalog::open(&data.join("catalog.db")).unwrap(), data, n, size)
}

/// A PostgreSQL catalog in a schema of its own, and a config file that points reclife at it.
struct Pg {
    catalog: PgCatalog,
    config: PathBuf,
}

fn pg(root: &Path, name: &str) -> Option<Pg> {
    let url = std::env::var("RECLIFE_TEST_PG").ok().filter(|u| !u.is_empty())?;
    let schema = format!("bench_{name}_{}", std::process::id());
    let catalog = PgCatalog::open(&PgOptions::new(&url, None).unwrap().with_schema(&schema)).unwrap();
    let config = root.join(format!("{name}-pg.toml"));
    std::fs::write(&config, format!("catalog = \"{url}\"\n[postgres]\nschema = \"{schema}\"\n")).unwrap();
    Some(Pg { catalog, config })
}

fn generate_into(cat: &dyn Catalog, data: &Path, n: usize, size: usize) {
    let body: Vec<u8> = (0..size).map(|i| (i * 7 + 13) as u8).collect();
    let mut batch = Vec::with_capacity(10_000);
    for i in 0..n {
        let (id, d) = doc(i, size);
        if size > 0 {
            let dir = data.join("media").join(&id);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join(format!("{id}.mp3")), &body).unwrap();
        }
        batch.push(Recording::parse(&d).unwrap());
        if batch.len() == 10_000 {
            cat.upsert_many(&batch).unwrap();
            batch.clear();
        }
    }
    cat.upsert_many(&batch).unwrap();
}

fn reclife(data: &Path, args: &[&str]) -> (f64, u64) {
    let t = Instant::now();
    let o = Command::new("/usr/bin/time")
        .args(["-f", "%M"])
        .arg(bin())
        .args(["--data-dir", data.to_str().unwrap(), "--now", NOW, "-q"])
        .args(args)
        .env_remove("RECLIFE_CONFIG")
        .output()
        .unwrap();
    let secs = t.elapsed().as_secs_f64();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "reclife {args:?}: {err}");
    let rss_kb = err.lines().last().and_then(|l| l.trim().parse().ok()).unwrap_or(0);
    (secs, rss_kb)
}

fn timed(cmd: &mut Command) -> f64 {
    let t = Instant::now();
    let st = cmd.status().unwrap();
    assert!(st.success(), "{cmd:?}");
    t.elapsed().as_secs_f64()
}

fn fresh(root: &Path, name: &str) -> PathBuf {
    let p = root.join(name);
    let _ = std::fs::remove_dir_all(&p);
    std::fs::create_dir_all(&p).unwrap();
    p
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let tmp = tempfile::tempdir_in(std::env::var("BENCH_DIR").unwrap_or_else(|_| "/tmp".into())).unwrap();
    let root = tmp.path();
    match args.first().map(String::as_str) {
        Some("backup") => {
            let mib: usize = args.get(1).and_then(|v| v.parse().ok()).unwrap_or(512);
            let data = fresh(root, "data");
            let n = mib; // one 1 MiB media file per recording
            generate(&data, n, 1 << 20);
            let media = data.join("media");
            let total = (n << 20) as f64 / (1 << 20) as f64;
            // Warm the page cache the same way for everyone, and start each run with nothing
            // left to write back, so no tool pays for the one before it.
            timed(Command::new("tar").arg("cf").arg("/dev/null").arg(&media));
            let sync = || timed(&mut Command::new("sync"));
            sync();
            let out = fresh(root, "zip");
            let zip_s =
                timed(Command::new("zip").args(["-0", "-r", "-q"]).arg(out.join("a.zip")).arg(".").current_dir(&media));
            let zip_sync = zip_s + sync();
            let out = fresh(root, "cp");
            let cp_s = timed(Command::new("cp").arg("-r").arg(&media).arg(out.join("copy")));
            let cp_sync = cp_s + sync();
            let out = fresh(root, "reclife");
            let loc = format!("file://{}", out.display());
            let (rl_s, _) = reclife(&data, &["backup", "--type", "voice", "--min-age", "1", "--location", &loc]);
            let rl_sync = rl_s + sync();
            println!(
                "backup {total:.0} MiB in {n} recordings (seconds; MiB/s; '+sync' adds the time to make it durable):"
            );
            for (name, s, d) in
                [("zip -0 -r", zip_s, zip_sync), ("cp -r", cp_s, cp_sync), ("reclife backup", rl_s, rl_sync)]
            {
                println!("  {name:15} {s:7.2} s {:8.1} MiB/s   +sync {d:7.2} s {:8.1} MiB/s", total / s, total / d);
            }
            println!(
                "  reclife vs zip: {:.2}x as returned, {:.2}x durable (target >= 1.5x)",
                zip_s / rl_s,
                zip_sync / rl_sync
            );
            println!(
                "  reclife vs cp: {:.0}% as returned, {:.0}% durable (target >= 70%); reclife fsyncs and re-reads every entry before returning",
                100.0 * cp_s / rl_s,
                100.0 * cp_sync / rl_sync
            );
        }
        Some("plan") => {
            let ns: Vec<usize> = args[1..].iter().filter_map(|v| v.parse().ok()).collect();
            let mut first_rss = None;
            for n in ns {
                let data = fresh(root, &format!("plan{n}"));
                let t = Instant::now();
                generate(&data, n, 0);
                let gen_s = t.elapsed().as_secs_f64();
                let (s, rss) = reclife(&data, &["purge", "--type", "voice", "--min-age", "1", "--dry-run", "--json"]);
                let base = *first_rss.get_or_insert(rss);
                println!(
                    "plan {n:>9} recordings: {s:6.2} s, max RSS {:6.1} MiB ({:.2}x the first size) [generated in {gen_s:.0} s]",
                    rss as f64 / 1024.0,
                    rss as f64 / base as f64
                );
                let _ = std::fs::remove_dir_all(&data);
            }
        }
        Some("purge") => {
            let n: usize = args.get(1).and_then(|v| v.parse().ok()).unwrap_or(100_000);
            let data = fresh(root, "data");
            generate(&data, n, 1024);
            let copy = root.join("media-copy");
            timed(Command::new("cp").arg("-r").arg(data.join("media")).arg(&copy));
            let rm_s = timed(Command::new("rm").arg("-rf").arg(&copy));
            let (rl_s, _) = reclife(&data, &["purge", "--type", "voice", "--min-age", "1"]);
            let left = walkdir::WalkDir::new(data.join("media"))
                .into_iter()
                .filter(|e| e.as_ref().is_ok_and(|e| e.file_type().is_file()))
                .count();
            assert_eq!(left, 0, "media left after the purge");
            let audit = std::fs::read_to_string(data.join("audit/deletions.jsonl")).unwrap().lines().count();
            assert_eq!(audit, n);
            println!("purge {n} recordings of 1 KiB:");
            println!("  rm -rf         {rm_s:7.2} s");
            println!("  reclife purge  {rl_s:7.2} s  (journal, catalog, media, audit fsynced per batch of 500)");
            println!("  reclife / rm -rf = {:.2}x (target <= 2x)", rl_s / rm_s);
        }
        Some("screens") => {
            let n: usize = args.get(1).and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
            let screens: usize = args.get(2).and_then(|v| v.parse().ok()).unwrap_or(n * 3 / 10);
            let data = fresh(root, "screens");
            let dry = ["purge", "--type", "voice", "--min-age", "1", "--dry-run", "--json"];
            let mut with_args = dry.to_vec();
            with_args.push("--include-screen");
            // BENCH_BACKENDS=postgres (or sqlite) measures one backend only.
            let only = std::env::var("BENCH_BACKENDS").unwrap_or_default();
            let mut backends: Vec<(&str, Box<dyn Catalog>, Vec<String>)> = Vec::new();
            if only.is_empty() || only.contains("sqlite") {
                backends.push(("sqlite", Box::new(SqliteCatalog::open(&data.join("catalog.db")).unwrap()), vec![]));
            }
            if let Some(p) = pg(root, "screens").filter(|_| only.is_empty() || only.contains("postgres")) {
                let cfg = vec!["--config".to_string(), p.config.display().to_string()];
                backends.push(("postgres", Box::new(p.catalog), cfg));
            }
            for (name, cat, cfg) in &backends {
                let t = Instant::now();
                generate_into(cat.as_ref(), &data, n, 0);
                generate_screens(cat.as_ref(), n, screens);
                // As `reclife catalog migrate` does after a bulk load.
                cat.refresh_statistics().unwrap();
                let gen_s = t.elapsed().as_secs_f64();
                let args_of = |a: &[&str]| -> Vec<String> {
                    cfg.iter().cloned().chain(a.iter().map(|s| s.to_string())).collect()
                };
                let without_args = args_of(&dry);
                let with_args = args_of(&with_args);
                let (without, rss0) = reclife(&data, &without_args.iter().map(String::as_str).collect::<Vec<_>>());
                let (with, rss1) = reclife(&data, &with_args.iter().map(String::as_str).collect::<Vec<_>>());
                println!(
                    "{name}: plan of {n} calls with {screens} screens (durable manifest written) [generated in {gen_s:.0} s]:"
                );
                println!("  without screens {without:7.2} s  max RSS {:6.1} MiB", rss0 as f64 / 1024.0);
                println!("  with screens    {with:7.2} s  max RSS {:6.1} MiB", rss1 as f64 / 1024.0);
                println!("  with / without = {:.2}x (target <= 2x; with <= 10 s)", with / without);
            }
            for (_, cat, _) in backends {
                drop(cat);
            }
            if let Some(p) = pg(root, "screens") {
                p.catalog.drop_schema().unwrap();
            }
        }
        Some("rule-rss") => {
            let ns: Vec<usize> = args[1..].iter().filter_map(|v| v.parse().ok()).collect();
            let mut first = None;
            for n in ns {
                let data = fresh(root, &format!("rule{n}"));
                let backups = fresh(root, &format!("rule{n}-backups"));
                let rules = fresh(root, &format!("rule{n}-rules"));
                generate(&data, n, 16);
                std::fs::write(
                    rules.join("bp.toml"),
                    "name = \"bp\"\nenabled = true\nschedule = \"0 0 2 * * *\"\n[[tasks]]\ntype = \"backup\"\nfilter = { recording_type = \"voice\", min_age = 1 }\n[[tasks]]\ntype = \"purge\"\nfilter = { recording_type = \"voice\", min_age = 1 }\n",
                )
                .unwrap();
                let cfg = data.join("node.toml");
                std::fs::write(
                    &cfg,
                    format!(
                        "rules_dir = {:?}\ndefault_backup_location = \"file://{}\"\n",
                        rules.display().to_string(),
                        backups.display()
                    ),
                )
                .unwrap();
                let (s, rss) = reclife(&data, &["--config", cfg.to_str().unwrap(), "run", "--once"]);
                let base = *first.get_or_insert(rss);
                println!(
                    "backup-then-purge rule over {n:>9} recordings: {s:7.2} s, max RSS {:6.1} MiB ({:.2}x the first size; target <= 1.2x)",
                    rss as f64 / 1024.0,
                    rss as f64 / base as f64
                );
                let _ = std::fs::remove_dir_all(&data);
                let _ = std::fs::remove_dir_all(&backups);
            }
        }
        _ => eprintln!("usage: lifecycle_compare backup MIB | plan N... | purge N | screens N S | rule-rss N..."),
    }
}
