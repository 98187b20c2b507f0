//! Criterion benches of the lifecycle hot paths: planning (scroll and count) and backup into a
//! zip (stored entries, CRC, fsync, verification).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use reclife::config::{Clock, Config, Context};
use reclife::lifecycle::backup::plan_and_backup as run_backup;
use reclife::lifecycle::plan::plan_task;
use reclife::lifecycle::{Filter, OnFailure, Op, Task};
use reclife::model::{Kind, Recording};
use reclife::progress::NoProgress;
use std::sync::Arc;

fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339("2025-06-25T03:00:00Z").unwrap().with_timezone(&chrono::Utc)
}

fn setup(n: usize, size: usize) -> (tempfile::TempDir, Context) {
    let tmp = tempfile::tempdir().unwrap();
    let ctx = Context::open(&tmp.path().join("data"), Config::default(), Clock::fixed(now())).unwrap();
    let body: Vec<u8> = (0..size).map(|i| (i * 7) as u8).collect();
    let mut recs = Vec::new();
    for i in 0..n {
        let id = format!("R{i:08}");
        let t = (now() - chrono::Duration::days(30 + (i % 300) as i64)).format("%Y-%m-%dT%H:%M:%SZ");
        let doc = format!(
            r#"{{"id":"{id}","startTime":"{t}","region":"us","mediaFiles":[{{"mediaId":"{id}.mp3","type":"audio/mp3","size":"{size}"}}]}}"#
        );
        if size > 0 {
            let dir = tmp.path().join("data/media").join(&id);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join(format!("{id}.mp3")), &body).unwrap();
        }
        recs.push(Recording::parse(&doc).unwrap());
    }
    ctx.catalog.upsert_many(&recs).unwrap();
    (tmp, ctx)
}

fn task(op: Op, location: Option<String>) -> Task {
    Task {
        op,
        filter: Filter { recording_type: Kind::Voice, min_age: Some(1), ..Filter::default() },
        include_screen: false,
        on_failure: OnFailure::Stop,
        location,
        zip: true,
        use_full_path: false,
        all_ages: false,
        source: None,
    }
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (_t1, ctx) = setup(10_000, 0);
    let mut g = c.benchmark_group("plan");
    g.sample_size(10).throughput(Throughput::Elements(10_000));
    g.bench_function("10k recordings", |b| {
        b.iter(|| {
            rt.block_on(plan_task(&ctx, 1, &task(Op::Purge, None), now(), None, 0, Arc::new(NoProgress), None)).unwrap()
        })
    });
    g.finish();

    let (t2, ctx) = setup(64, 1 << 20);
    let out = t2.path().join("out");
    let mut g = c.benchmark_group("backup");
    g.sample_size(10).throughput(Throughput::Bytes(64 << 20));
    g.bench_function("64 x 1 MiB into a zip", |b| {
        b.iter(|| {
            let _ = std::fs::remove_dir_all(&out);
            let t = task(Op::Backup, Some(format!("file://{}", out.display())));
            rt.block_on(run_backup(&ctx, &t, now(), Arc::new(NoProgress))).unwrap()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
