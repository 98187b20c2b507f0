//! One pair, start to finish: fetch the voice and screen media into a temporary folder,
//! open encrypted ones with the key store, mux, seal the output when a source was encrypted
//! (or `encrypt_always`), store it, and record it on the screen recording and the call.
//!
//! Every failure comes back as a reason naming the media or step at fault; the caller marks
//! the pair failed and moves on. Nothing here panics on input.

use super::pairing;
use super::MuxerError;
use crate::config::Context;
use crate::crypto::{self, KeyStore, Recipient};
use crate::media::{self, MuxOptions, MuxReport, ScreenVideo, VoiceSegment};
use crate::model::{MediaFile, Recording};
use crate::storage::{Key, MediaStoreExt};
use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The call label GIR sets after muxing.
pub const SCREEN_LABEL: &str = "screenRecording";

/// What every pair needs, loaded once per muxer.
pub struct Env {
    keys: Option<Arc<KeyStore>>,
    keys_error: Option<String>,
    recipients: Arc<Vec<Recipient>>,
    pool: rayon::ThreadPool,
    temp_root: PathBuf,
}

impl Env {
    pub fn new(ctx: &Context) -> Result<Env, MuxerError> {
        let cfg = &ctx.config.muxer;
        // Without keys, unencrypted pairs still mux; encrypted ones fail with this reason.
        let (keys, keys_error) = match KeyStore::from_config(&ctx.config) {
            Ok(k) => (Some(Arc::new(k)), None),
            Err(e) => (None, Some(format!("no key store: {e}"))),
        };
        let recipients = if cfg.screen_certs.is_empty() {
            if cfg.encrypt_always {
                return Err(MuxerError::Config("muxer.encrypt_always = 1 needs muxer.screen_certs".into()));
            }
            Vec::new()
        } else {
            crypto::load_recipients(&cfg.screen_certs)
                .map_err(|e| MuxerError::Config(format!("muxer.screen_certs: {e}")))?
        };
        let temp_root = match &cfg.temp_dir {
            Some(d) => d.clone(),
            None => ctx.data_dir.join("muxer-tmp"),
        };
        std::fs::create_dir_all(&temp_root)
            .map_err(|e| MuxerError::Config(format!("muxer.temp_dir {}: {e}", temp_root.display())))?;
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(cfg.worker_threads)
            .thread_name(|i| format!("reclife-mux-{i}"))
            .build()
            .map_err(|e| MuxerError::Task(e.to_string()))?;
        Ok(Env { keys, keys_error, recipients: Arc::new(recipients), pool, temp_root })
    }
}

/// A pair's result.
#[derive(Debug, Clone)]
pub struct Done {
    pub media_id: String,
    pub encrypted: bool,
    /// The screen video and voice segments it was made from.
    pub sources: Vec<String>,
    /// The stored output's size.
    pub bytes: u64,
}

/// A fetched source: where it is, and whether it must be opened first.
struct Source {
    media: MediaFile,
    fetched: PathBuf,
    plain: PathBuf,
    encrypted: bool,
}

/// Fetches a media file into `dir`. Temporary files are named after the mediaId (a checked
/// name), so an error about a file names the media it came from.
async fn fetch(ctx: &Context, dir: &Path, rec: &str, m: &MediaFile, n: usize) -> Result<Source, String> {
    let (store, key) = crate::ingest::in_place::locate_async(ctx, rec, &m.media_id)
        .await
        .map_err(|e| format!("media {}: {e}", m.media_id))?;
    let plain = dir.join(format!("{n}-{}", m.media_id));
    let fetched = dir.join(format!("{n}-{}.fetched", m.media_id));
    store.get_to_file(&key, &fetched).await.map_err(|e| format!("media {} of {rec}: {e}", m.media_id))?;
    let io = |e: std::io::Error| format!("media {}: {e}", m.media_id);
    let mut head = [0u8; 16];
    let read = {
        use tokio::io::AsyncReadExt;
        tokio::fs::File::open(&fetched).await.map_err(io)?.read(&mut head).await.map_err(io)?
    };
    let encrypted = m.encrypted || m.pkcs7.is_some() || crypto::looks_enveloped(&head[..read]);
    if !encrypted {
        tokio::fs::rename(&fetched, &plain).await.map_err(io)?;
    }
    Ok(Source { media: m.clone(), fetched, plain, encrypted })
}

/// The muxed file's mediaId, derived from the screen video's so that a re-run after a
/// crash overwrites rather than duplicates.
pub fn output_media_id(video: &MediaFile) -> String {
    let stem = video.media_id.strip_suffix(".mp4").unwrap_or(&video.media_id);
    format!("{stem}-muxed.mp4")
}

/// The mediaId of a re-mux (a voice segment arrived after the pair was muxed): derived from
/// the screen video's and the sources', so that it differs from the file it replaces (the
/// switch is one document write; the old file is removed after it) and a re-run after a crash
/// overwrites rather than duplicates.
fn remux_media_id(video: &MediaFile, sources: &[String]) -> String {
    use sha2::Digest;
    let stem = video.media_id.strip_suffix(".mp4").unwrap_or(&video.media_id);
    let h = sha2::Sha256::digest(sources.join("\n").as_bytes());
    format!("{stem}-muxed-{}.mp4", hex::encode(&h[..4]))
}

/// Muxes one pair; `Err` is the reason it failed.
pub async fn mux_pair(ctx: &Context, env: &Env, call: &Recording, screen: &Recording) -> Result<Done, String> {
    let cfg = &ctx.config.muxer;
    let video = pairing::screen_video(screen).ok_or("the screen recording has no video media")?.clone();
    let tmp = tempfile::Builder::new()
        .prefix(&format!("{}-", screen.id))
        .tempdir_in(&env.temp_root)
        .map_err(|e| format!("temp_dir {}: {e}", env.temp_root.display()))?;
    let dir = tmp.path().to_path_buf();
    let result = mux_in(ctx, env, call, screen, &video, &dir).await;
    if cfg.clean_temp() {
        match tokio::task::spawn_blocking(move || tmp.close()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(dir = %dir.display(), error = %e, "cannot remove temporary files"),
            Err(e) => tracing::warn!(dir = %dir.display(), error = %e, "cannot remove temporary files"),
        }
    } else {
        let kept = tmp.keep();
        tracing::info!(dir = %kept.display(), "temporary files kept (save_temp_file)");
    }
    result
}

async fn mux_in(
    ctx: &Context,
    env: &Env,
    call: &Recording,
    screen: &Recording,
    video: &MediaFile,
    dir: &Path,
) -> Result<Done, String> {
    let cfg = ctx.config.muxer.clone();
    let mut voices = Vec::new();
    for (i, m) in pairing::voice_media(call).into_iter().enumerate() {
        voices.push(fetch(ctx, dir, &call.id, m, i + 1).await?);
    }
    let screen_src = fetch(ctx, dir, &screen.id, video, 0).await?;
    let any_encrypted = screen_src.encrypted || voices.iter().any(|v| v.encrypted);
    let seal = any_encrypted || cfg.encrypt_always;
    if seal && env.recipients.is_empty() {
        return Err("a source is encrypted, but muxer.screen_certs names no certificate to seal the output to".into());
    }
    let keys = if any_encrypted {
        Some(env.keys.clone().ok_or_else(|| env.keys_error.clone().unwrap_or_else(|| "no key store".into()))?)
    } else {
        None
    };
    let sources: Vec<String> = std::iter::once(video.media_id.clone())
        .chain(pairing::voice_media(call).iter().map(|m| m.media_id.clone()))
        .collect();
    // A stale muxed file (made before a voice segment arrived) is replaced by a new one.
    let out_id = if pairing::is_muxed(screen) { remux_media_id(video, &sources) } else { output_media_id(video) };
    let muxed = dir.join(&out_id);
    let sealed = dir.join(format!("{out_id}.cms"));
    let recipients = env.recipients.clone();
    let cipher = cfg.cipher()?;
    let now = ctx.clock.now();
    let (screen_start, screen_stop) = (video.start.unwrap_or(screen.start), video.stop.or(Some(screen.stop)));
    let call_start = call.start;
    let (m2, s2) = (muxed.clone(), sealed.clone());
    let (tx, rx) = tokio::sync::oneshot::channel();
    env.pool.spawn(move || {
        let work = || -> Result<MuxReport, String> {
            let open = |s: &Source| -> Result<(), String> {
                if !s.encrypted {
                    return Ok(());
                }
                let k = keys.as_ref().ok_or("no key store")?;
                k.decrypt_scratch(&s.fetched, &s.plain, s.media.pkcs7.as_deref(), &s.media.cert_alias)
                    .map_err(|e| format!("cannot decrypt {}: {e}", s.media.media_id))
            };
            open(&screen_src)?;
            let mut segs = Vec::with_capacity(voices.len());
            for v in &voices {
                open(v)?;
                segs.push(VoiceSegment {
                    path: v.plain.clone(),
                    start: v.media.start.unwrap_or(call_start),
                    stop: v.media.stop,
                });
            }
            let sv = ScreenVideo { path: screen_src.plain.clone(), start: screen_start, stop: screen_stop };
            let opts = MuxOptions {
                max_overlap_allowed_ms: cfg.max_overlap_allowed,
                max_span_ms: cfg.max_span_minutes.saturating_mul(60_000),
                video_padding_slice_length_ms: cfg.video_padding_slice_length_ms,
                temp_dir: Some(m2.parent().map(Path::to_path_buf).unwrap_or_default()),
                // A scratch file: sealed or stored (durably) next.
                durable: false,
                ..MuxOptions::default()
            };
            let report = media::mux(&sv, &segs, &m2, &opts).map_err(|e| format!("mux failed: {e}"))?;
            if seal {
                crypto::seal_file(&m2, &s2, &recipients, cipher, now)
                    .map_err(|e| format!("cannot seal the muxed file: {e}"))?;
            }
            Ok(report)
        };
        // A panic in a rayon job would abort the process; caught, it fails only this pair.
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work))
            .unwrap_or_else(|_| Err("the mux worker panicked on this pair".to_string()));
        let _ = tx.send(r);
    });
    let report = rx.await.map_err(|_| "the mux worker stopped".to_string())??;
    let upload = if seal { &sealed } else { &muxed };
    let key = Key::media(&screen.id, &out_id).map_err(|e| e.to_string())?;
    // Check the screen recording is still there before storing anything under it.
    let (catalog, sid) = (ctx.catalog.clone(), screen.id.clone());
    let exists = tokio::task::spawn_blocking(move || catalog.get(&sid).map(|e| e.is_some()))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    if !exists {
        return Err(format!("screen recording {} is gone (purged?); nothing stored", screen.id));
    }
    // Announced before the first byte; withdrawn when `intent` drops, once the document lists
    // the file (or the file was removed after a failed add).
    let intent = crate::ingest::intent::announce(ctx, &screen.id).await?;
    let meta = ctx.media.put_file(&key, upload).await.map_err(|e| format!("cannot store {key}: {e}"))?;
    crate::lifecycle::failpoint::hit("mux.after_store");
    intent.confirm(&[(ctx.media.clone(), key.clone(), meta.size)]).await?;

    let entry =
        media_entry(&out_id, &report, meta.size, &sources, seal.then_some(&ctx.config.muxer.screen_certs), &key);
    let catalog = ctx.catalog.clone();
    let (screen_id, call_id, label) = (screen.id.clone(), call.id.clone(), cfg.mark_screen_recording_label);
    let added = tokio::task::spawn_blocking(move || -> Result<Vec<String>, String> {
        // The muxed file joins the document in one conditional write: it fails if the screen
        // recording is gone or changed since it was read (then it is read again), so a
        // concurrent purge either sees the new version and skips the screen, or wins and the
        // file stored above is removed below. No media is ever left that no document lists.
        for _ in 0..5 {
            let Some(current) = catalog.get(&screen_id).map_err(|e| e.to_string())? else {
                return Err(format!("screen recording {screen_id} was purged while it was muxed"));
            };
            let (updated, replaced) = add_media(&current.recording, entry.clone(), seal)?;
            match catalog.upsert_if(&updated, current.version) {
                Ok(_) => {
                    if label {
                        match catalog.label(&call_id, SCREEN_LABEL) {
                            Ok(()) | Err(crate::catalog::CatalogError::NotFound(_)) => {}
                            Err(e) => return Err(format!("cannot label {call_id}: {e}")),
                        }
                    }
                    return Ok(replaced);
                }
                Err(crate::catalog::CatalogError::Changed { .. }) => continue,
                Err(crate::catalog::CatalogError::NotFound(_)) => {
                    return Err(format!("screen recording {screen_id} was purged while it was muxed"))
                }
                Err(e) => return Err(format!("cannot update {screen_id}: {e}")),
            }
        }
        Err(format!("screen recording {screen_id} kept changing; the muxed file was not added"))
    })
    .await
    .map_err(|e| e.to_string())?;
    let replaced = match added {
        Ok(r) => r,
        Err(why) => {
            match ctx.media.delete(&key).await {
                Ok(()) | Err(crate::storage::StorageError::NotFound { .. }) => {}
                Err(e) => {
                    tracing::warn!(key = %key, error = %e, "cannot remove the muxed file after a failed add; `reclife check --repair` will")
                }
            }
            return Err(why);
        }
    };
    drop(intent);
    // The muxed files the new one replaced: no document lists them any more.
    for old in replaced.iter().filter(|id| **id != out_id) {
        let Ok(k) = Key::media(&screen.id, old) else { continue };
        match ctx.media.delete(&k).await {
            Ok(()) | Err(crate::storage::StorageError::NotFound { .. }) => {
                tracing::info!(screen = %screen.id, old = %old, new = %out_id, "a late voice segment: the muxed file was replaced")
            }
            Err(e) => {
                tracing::warn!(key = %k, error = %e, "cannot remove a replaced muxed file; `reclife check --repair` will")
            }
        }
    }
    Ok(Done { media_id: out_id, encrypted: seal, sources, bytes: meta.size })
}

/// GIR's timestamp style: `2015-06-24T20:18:31.000+0000`.
fn gir_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string()
}

fn media_entry(
    out_id: &str,
    r: &MuxReport,
    size: u64,
    sources: &[String],
    certs: Option<&Vec<PathBuf>>,
    key: &Key,
) -> Value {
    let stop = r.output_start + Duration::milliseconds(i64::try_from(r.duration_ms).unwrap_or(i64::MAX / 2));
    let secs = r.duration_ms / 1000;
    let mut e = json!({
        "mediaId": out_id,
        "type": "video/mp4",
        "startTime": gir_time(r.output_start),
        "stopTime": gir_time(stop),
        "duration": format!("{}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60),
        "size": size.to_string(),
        "mediaDescriptor": {"storage": "reclife", "path": key.as_str()},
        "parameters": {"muxed_mediaIds": sources, "audioReencoded": r.audio_reencoded},
    });
    if let Some(certs) = certs {
        let aliases: Vec<String> =
            certs.iter().filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned())).collect();
        e["certAlias"] = json!(aliases);
    }
    e
}

/// The screen recording with `entry` as its one muxed file (any earlier muxed file, and any
/// entry of the same mediaId, removed), and the mediaIds of the muxed files it replaced.
fn add_media(screen: &Recording, entry: Value, encrypted: bool) -> Result<(Recording, Vec<String>), String> {
    let id = entry["mediaId"].as_str().unwrap_or_default().to_string();
    let mut doc = screen.doc_value();
    let obj = doc.as_object_mut().ok_or("the screen document is not an object")?;
    let field =
        if obj.contains_key("mediaFiles") || !obj.contains_key("mediaFile") { "mediaFiles" } else { "mediaFile" };
    let files = obj.entry(field).or_insert_with(|| json!([]));
    let arr = files.as_array_mut().ok_or_else(|| format!("{field} of {} is not a list", screen.id))?;
    let muxed =
        |m: &Value| m.pointer("/parameters/muxed_mediaIds").and_then(Value::as_array).is_some_and(|a| !a.is_empty());
    let replaced: Vec<String> = arr
        .iter()
        .filter(|m| muxed(m))
        .filter_map(|m| m.get("mediaId").and_then(Value::as_str).map(str::to_string))
        .collect();
    arr.retain(|m| m.get("mediaId").and_then(Value::as_str) != Some(id.as_str()) && !muxed(m));
    arr.push(entry);
    let mut rec = screen.with_doc(&doc).map_err(|e| format!("cannot edit {}: {e}", screen.id))?;
    for m in &mut rec.media {
        if m.media_id == id {
            m.encrypted = encrypted;
        }
    }
    Ok((rec, replaced))
}
