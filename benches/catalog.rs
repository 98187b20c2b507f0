//! Catalog throughput: ingest (upsert) rate and scroll rate on the embedded SQLite catalog.
//!
//!     cargo bench --bench catalog

use chrono::{TimeZone, Utc};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use reclife::catalog::synth::{self, Rng};
use reclife::catalog::{Catalog, CatalogExt, Query, SqliteCatalog};

fn end() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 6, 1, 0, 0, 0).unwrap()
}

fn ingest(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let cat = SqliteCatalog::open(&dir.path().join("catalog.db")).unwrap();
    let mut rng = Rng::new(1);
    let mut next = 0u64;
    let mut g = c.benchmark_group("catalog_ingest");
    g.throughput(Throughput::Elements(1000));
    g.sample_size(20);
    g.bench_function("upsert_many_1000_on_disk", |b| {
        b.iter_batched(
            || {
                let v: Vec<_> = (0..1000).map(|i| synth::call(next + i, end(), 365, &mut rng)).collect();
                next += 1000;
                v
            },
            |recs| cat.upsert_many(&recs).unwrap(),
            criterion::BatchSize::LargeInput,
        )
    });
    g.bench_function("parse_1000_documents", |b| {
        let docs: Vec<String> = (0..1000).map(|i| synth::call(i, end(), 365, &mut rng).doc().to_string()).collect();
        b.iter(|| docs.iter().map(|d| reclife::model::Recording::parse(d).unwrap().media.len()).sum::<usize>())
    });
    g.finish();
}

fn scroll(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let cat = SqliteCatalog::open(&dir.path().join("catalog.db")).unwrap();
    let n = 100_000u64;
    synth::fill(&cat, n, end(), 365, 7, 5000).unwrap();
    let mut g = c.benchmark_group("catalog_scroll");
    g.throughput(Throughput::Elements(n));
    g.sample_size(10);
    for slices in [1u32, 24] {
        let q = Query { scan_intervals_per_day: slices, ..Query::default() };
        g.bench_function(format!("all_100k_slices_{slices}"), |b| {
            b.iter(|| cat.scroll(&q, 1000).map(|p| p.unwrap().rows.len() as u64).sum::<u64>())
        });
    }
    let q = Query {
        region: Some("us".into()),
        call_type: Some("inbound".into()),
        scan_intervals_per_day: 24,
        ..Query::default()
    };
    g.bench_function("filtered_region_calltype_100k", |b| {
        b.iter(|| cat.scroll(&q, 1000).map(|p| p.unwrap().rows.len() as u64).sum::<u64>())
    });
    g.finish();
}

criterion_group!(benches, ingest, scroll);
criterion_main!(benches);
