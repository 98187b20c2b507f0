//! Scroll rate and peak memory at scale, one process per measurement so that peak RSS
//! (VmHWM) belongs to the scroll alone. Driven by `benches/catalog_scroll.sh`.
//!
//!     catalog_rss gen N DB      # fill DB with N synthetic recordings
//!     catalog_rss scroll DB     # scroll everything; print rows, seconds, rows/s, peak RSS

use chrono::{TimeZone, Utc};
use reclife::catalog::{synth, Catalog, CatalogExt, Query, SqliteCatalog};
use std::time::Instant;

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["gen", n, db] => {
            let n: u64 = n.parse().expect("N");
            let cat = SqliteCatalog::open(std::path::Path::new(db)).expect("open");
            let t = Instant::now();
            let end = Utc.with_ymd_and_hms(2025, 6, 1, 0, 0, 0).unwrap();
            synth::fill(&cat, n, end, 730, 42, 10_000).expect("fill");
            let s = t.elapsed().as_secs_f64();
            println!("gen rows={n} secs={s:.2} rows_per_s={:.0}", n as f64 / s);
        }
        ["scroll", db] => {
            let cat = SqliteCatalog::open(std::path::Path::new(db)).expect("open");
            let q = Query { scan_intervals_per_day: 24, ..Query::default() };
            let t = Instant::now();
            let mut rows = 0u64;
            let mut bytes = 0u64;
            for p in cat.scroll(&q, 1000) {
                for r in p.expect("page").rows {
                    rows += 1;
                    bytes += r.bytes;
                }
            }
            let s = t.elapsed().as_secs_f64();
            assert_eq!(rows, cat.count(&Query::default()).expect("count"));
            println!(
                "scroll rows={rows} secs={s:.3} rows_per_s={:.0} peak_rss_kib={} media_bytes={bytes}",
                rows as f64 / s,
                peak_rss_kib()
            );
        }
        _ => {
            eprintln!("usage: catalog_rss gen N DB | catalog_rss scroll DB");
            std::process::exit(2);
        }
    }
}
