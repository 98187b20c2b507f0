//! Media pipeline benchmarks.
//!
//! `cargo bench --bench media` runs the criterion benches: one minute of call (two 8 kHz MP3
//! segments + a 2 fps screen video) muxed through the re-encode path, the same call through the
//! fast path (one 16 kHz MP3 copied as is), and the yardstick (remux + LAME encode).
//!
//! With `MEDIA_BENCH_MANIFEST=FILE` set it instead runs the pairs of that manifest (written by
//! `benches/media_vs_ffmpeg.sh`) through `reclife::media::mux` on a rayon pool of
//! `MEDIA_BENCH_THREADS` (default: all cores), then times the yardstick for each pair on one
//! thread, and prints the figures as `key=value` lines for the script. With `MEDIA_BENCH_KEYS=DIR`
//! the manifest's voice files are CMS envelopes: each pair first decrypts its voices with the key
//! store of `DIR` into temporary files (as the muxer does), inside the timed work.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use chrono::{DateTime, Duration, TimeZone, Utc};
use criterion::{criterion_group, Criterion};
use rayon::prelude::*;
use reclife::crypto::KeyStore;
use reclife::media::{self, decode_voice, MuxOptions, MuxReport, ScreenVideo, VoiceSegment};

fn epoch() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 6, 1, 0, 0, 0).unwrap()
}

struct Pair {
    id: String,
    screen: ScreenVideo,
    voices: Vec<VoiceSegment>,
}

/// Manifest lines: `id \t video \t video_start_ms \t voice:start_ms,voice:start_ms…`.
fn read_manifest(path: &Path) -> Vec<Pair> {
    let text = std::fs::read_to_string(path).expect("manifest");
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            let at = |ms: &str| epoch() + Duration::milliseconds(ms.parse().expect("ms"));
            let voices = f[3]
                .split(',')
                .map(|v| {
                    let (p, ms) = v.rsplit_once(':').expect("voice:ms");
                    VoiceSegment { path: PathBuf::from(p), start: at(ms), stop: None }
                })
                .collect();
            Pair {
                id: f[0].to_string(),
                screen: ScreenVideo { path: PathBuf::from(f[1]), start: at(f[2]), stop: None },
                voices,
            }
        })
        .collect()
}

/// CPU seconds (user + system) from a `/proc/.../stat` file: the process or the calling thread.
fn cpu_seconds(which: &str) -> f64 {
    let stat = std::fs::read_to_string(which).unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime (fields 14 and 15) are the 12th and 13th after the command name.
    (ticks(11) + ticks(12)) / 100.0
}

/// The pair's voices decoded and laid at 16 kHz (by sample repetition: only the encode is timed).
fn reference_pcm(pair: &Pair) -> Vec<f32> {
    let start = pair.voices.iter().map(|v| v.start).chain([pair.screen.start]).min().unwrap();
    let mut pcm: Vec<f32> = Vec::new();
    for v in &pair.voices {
        let d = decode_voice(&v.path).expect("decode");
        let off = ((v.start - start).num_milliseconds() * 16) as usize;
        let step = 16000.0 / f64::from(d.sample_rate);
        let n = (d.frames() as f64 * step) as usize;
        if pcm.len() < off + n {
            pcm.resize(off + n, 0.0);
        }
        for i in 0..n {
            pcm[off + i] = d.planes[0][((i as f64) / step) as usize];
        }
    }
    pcm
}

/// One pair as the muxer does it: decrypt the voices (when `keys` is given) into `tmp`, mux.
fn mux_pair(p: &Pair, keys: Option<&KeyStore>, tmp: &Path, out: &Path, opts: &MuxOptions) -> Result<MuxReport, String> {
    let Some(keys) = keys else {
        return media::mux(&p.screen, &p.voices, out, opts).map_err(|e| e.to_string());
    };
    let dir = tempfile::tempdir_in(tmp).map_err(|e| e.to_string())?;
    let mut plain = Vec::with_capacity(p.voices.len());
    for (i, v) in p.voices.iter().enumerate() {
        let path = dir.path().join(format!("{i}.mp3"));
        keys.decrypt_scratch(&v.path, &path, None, &[]).map_err(|e| e.to_string())?;
        plain.push(VoiceSegment { path, ..v.clone() });
    }
    media::mux(&p.screen, &plain, out, opts).map_err(|e| e.to_string())
}

fn pairs_mode(manifest: &Path) {
    let mut pairs = read_manifest(manifest);
    let keys = std::env::var_os("MEDIA_BENCH_KEYS").map(|d| KeyStore::load(Path::new(&d), None).expect("keys"));
    let out_dir =
        PathBuf::from(std::env::var("MEDIA_BENCH_OUT").unwrap_or_else(|_| "/tmp/reclife-media-bench/reclife".into()));
    std::fs::create_dir_all(&out_dir).unwrap();
    let threads = std::env::var("MEDIA_BENCH_THREADS").ok().and_then(|t| t.parse().ok()).unwrap_or(0);
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
    // As the muxer runs it: the output is a scratch file that the muxer seals or stores next
    // (durably, there), so it is not synced here; neither does the baseline sync its outputs.
    let opts = MuxOptions { durable: false, ..MuxOptions::default() };

    let cpu0 = cpu_seconds("/proc/self/stat");
    let t0 = Instant::now();
    let results: Vec<_> = pool.install(|| {
        pairs
            .par_iter()
            .map(|p| mux_pair(p, keys.as_ref(), &out_dir, &out_dir.join(format!("{}.mp4", p.id)), &opts))
            .collect()
    });
    let wall = t0.elapsed().as_secs_f64();
    let cpu = cpu_seconds("/proc/self/stat") - cpu0;
    let failed: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    for e in &failed {
        eprintln!("failed: {e}");
    }
    let reencoded = results.iter().filter(|r| matches!(r, Ok(r) if r.audio_reencoded)).count();
    let media_secs: f64 = results.iter().filter_map(|r| r.as_ref().ok()).map(|r| r.duration_ms as f64 / 1000.0).sum();
    let n = pairs.len() as f64;
    println!("pairs={}", pairs.len());
    println!("failed={}", failed.len());
    println!("reencoded={reencoded}");
    println!("media_seconds={media_secs:.1}");
    println!("threads={}", pool.current_num_threads());
    println!("wall_s={wall:.3}");
    println!("pairs_per_s={:.4}", n / wall);
    println!("cpu_s={cpu:.2}");
    println!("cpu_per_pair_s={:.4}", cpu / n);
    // Peak resident memory of the process so far (the muxes above).
    let hwm = std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:").map(|v| v.trim().trim_end_matches(" kB").trim().to_string()))
        .unwrap_or_default();
    println!("peak_rss_kib={hwm}");

    if std::env::var_os("MEDIA_BENCH_SKIP_REFERENCE").is_some() {
        return;
    }
    // The yardstick, per pair, on this thread: stream-copy remux + LAME encode of the call audio
    // (of the decrypted voices; the decryption is not part of it).
    let tmp = tempfile::tempdir().unwrap();
    if let Some(keys) = &keys {
        for (n, p) in pairs.iter_mut().enumerate() {
            for (i, v) in p.voices.iter_mut().enumerate() {
                let plain = tmp.path().join(format!("{n}-{i}.mp3"));
                keys.decrypt_file(&v.path, &plain, None, &[]).expect("decrypt");
                v.path = plain;
            }
        }
    }
    let mut ref_cpu = 0.0;
    for p in &pairs {
        let pcm = reference_pcm(p);
        let c0 = cpu_seconds("/proc/thread-self/stat");
        media::reference::remux_copy(&p.screen.path, &tmp.path().join("r.mp4")).expect("remux");
        media::reference::lame_encode(pcm, 16000, opts.audio_bitrate_kbps).expect("encode");
        ref_cpu += cpu_seconds("/proc/thread-self/stat") - c0;
    }
    println!("reference_cpu_per_pair_s={:.4}", ref_cpu / n);
    println!("cpu_ratio_vs_reference={:.3}", cpu / ref_cpu);
}

// ---- criterion ---------------------------------------------------------------------------

fn ffmpeg(args: &[&str]) {
    let st =
        Command::new("ffmpeg").args(["-hide_banner", "-loglevel", "error", "-y"]).args(args).status().expect("ffmpeg");
    assert!(st.success(), "ffmpeg {args:?}");
}

fn bench_mux(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let p = |n: &str| d.join(n).to_str().unwrap().to_string();
    let src = "testsrc2=size=640x360:rate=2:duration=60";
    ffmpeg(&["-f", "lavfi", "-i", src, "-c:v", "libx264", "-preset", "ultrafast", "-g", "20", &p("v.mp4")]);
    let voice = |name: &str, rate: u32, secs: u32| {
        let tone = format!("sine=frequency=400:sample_rate={rate}:duration={secs}");
        let noise = format!("anoisesrc=color=pink:amplitude=0.05:sample_rate={rate}:duration={secs}");
        let mix = ["-filter_complex", "amix=inputs=2", "-ac", "1", "-c:a", "libmp3lame", "-b:a", "32k"];
        let mut args = vec!["-f", "lavfi", "-i", &tone, "-f", "lavfi", "-i", &noise];
        args.extend(mix);
        let out = p(name);
        args.push(&out);
        ffmpeg(&args);
    };
    voice("a.mp3", 8000, 35);
    voice("b.mp3", 8000, 25);
    voice("w.mp3", 16000, 62);
    let at = |ms| epoch() + Duration::milliseconds(ms);
    let screen = ScreenVideo { path: d.join("v.mp4"), start: at(1000), stop: None };
    let two = vec![
        VoiceSegment { path: d.join("a.mp3"), start: at(0), stop: None },
        VoiceSegment { path: d.join("b.mp3"), start: at(36_000), stop: None },
    ];
    let one = vec![VoiceSegment { path: d.join("w.mp3"), start: at(0), stop: None }];
    let opts = MuxOptions::default();
    let mut g = c.benchmark_group("mux_60s_call");
    g.sample_size(10);
    g.bench_function("reencode_two_8k_segments", |b| {
        b.iter(|| media::mux(&screen, &two, &d.join("o1.mp4"), &opts).unwrap())
    });
    g.bench_function("fast_path_copy_16k_mp3", |b| {
        b.iter(|| {
            let r = media::mux(&screen, &one, &d.join("o2.mp4"), &opts).unwrap();
            assert!(!r.audio_reencoded);
        })
    });
    let pcm: Vec<f32> = (0..60 * 16000).map(|i| ((i as f32) * 0.157).sin() * 0.3).collect();
    g.bench_function("yardstick_remux_plus_lame", |b| {
        b.iter(|| {
            media::reference::remux_copy(&d.join("v.mp4"), &d.join("o3.mp4")).unwrap();
            media::reference::lame_encode(pcm.clone(), 16000, 32).unwrap()
        })
    });
    g.finish();
}

criterion_group!(benches, bench_mux);

fn main() {
    if let Some(m) = std::env::var_os("MEDIA_BENCH_MANIFEST") {
        pairs_mode(Path::new(&m));
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
