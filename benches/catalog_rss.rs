//! Scroll rate, upsert rate and peak memory at scale, on SQLite and PostgreSQL side by side,
//! one process per measurement so that peak RSS (VmHWM) belongs to the scroll alone. Driven
//! by `benches/catalog_scroll.sh`.
//!
//!     catalog_rss gen N CATALOG      # fill CATALOG with N synthetic recordings (upsert rate: batches of 10k)
//!     catalog_rss scroll CATALOG     # scroll everything; print rows, seconds, rows/s, peak RSS
//!     catalog_rss drop CATALOG       # PostgreSQL: drop the bench's schema
//!
//! CATALOG is an SQLite file path, or `postgres://user@host:port/db#SCHEMA` (password from
//! `PGPASSWORD`); the schema is created on first use.

use chrono::{TimeZone, Utc};
use reclife::catalog::{synth, Catalog, CatalogExt, PgCatalog, PgOptions, Query, SqliteCatalog};
use std::time::Instant;

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn pg(spec: &str) -> PgCatalog {
    let (url, schema) = spec.split_once('#').unwrap_or((spec, "reclife_bench"));
    let opts = PgOptions::new(url, None).expect("catalog URL").with_schema(schema).with_pool_size(2);
    PgCatalog::open(&opts).expect("open PostgreSQL")
}

fn open(spec: &str) -> Box<dyn Catalog> {
    if reclife::catalog::is_postgres_url(spec) {
        Box::new(pg(spec))
    } else {
        Box::new(SqliteCatalog::open(std::path::Path::new(spec)).expect("open"))
    }
}

fn backend(spec: &str) -> &'static str {
    if reclife::catalog::is_postgres_url(spec) {
        "postgres"
    } else {
        "sqlite"
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["gen", n, spec] => {
            let n: u64 = n.parse().expect("N");
            let cat = open(spec);
            let end = Utc.with_ymd_and_hms(2025, 6, 1, 0, 0, 0).unwrap();
            // Documents are made outside the timed part: the rate is the catalog's own.
            let mut rng = synth::Rng::new(42);
            let (mut done, mut in_catalog) = (0u64, 0f64);
            let t = Instant::now();
            while done < n {
                let batch: Vec<_> = (done..n.min(done + 10_000)).map(|i| synth::call(i, end, 730, &mut rng)).collect();
                let u = Instant::now();
                cat.upsert_many(&batch).expect("upsert");
                in_catalog += u.elapsed().as_secs_f64();
                done += batch.len() as u64;
            }
            let s = t.elapsed().as_secs_f64();
            println!(
                "{} gen rows={n} secs={s:.2} upsert_secs={in_catalog:.2} upserts_per_s={:.0}",
                backend(spec),
                n as f64 / in_catalog
            );
        }
        ["scroll", spec] => {
            let cat = open(spec);
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
                "{} scroll rows={rows} secs={s:.3} rows_per_s={:.0} peak_rss_kib={} media_bytes={bytes}",
                backend(spec),
                rows as f64 / s,
                peak_rss_kib()
            );
        }
        ["drop", spec] if reclife::catalog::is_postgres_url(spec) => pg(spec).drop_schema().expect("drop schema"),
        _ => {
            eprintln!("usage: catalog_rss gen N CATALOG | catalog_rss scroll CATALOG | catalog_rss drop PG-CATALOG");
            std::process::exit(2);
        }
    }
}
