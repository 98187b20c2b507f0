//! `reclife download --check`: the target folder against the API, without downloading. For the
//! period (as a run would compute it, checkpoint ignored), each recording of this instance must
//! have its folder, `meta-data.json`, and every matching media file with the size the metadata
//! states; and no recording folder of the period may be one the API does not list, nor hold
//! other files (a `.part` left over, a stray file).

use super::layout::{self, META_FILE};
use super::period::Period;
use super::record;
use super::run::{api, target, SCREEN_RECORDINGS_URI};
use super::{DownloadError, Job};
use std::collections::HashSet;

/// What `--check` found. Each line names a recording and a file.
#[derive(Debug, Default, Clone)]
pub struct CheckReport {
    pub recordings: u64,
    pub files: u64,
    pub missing: Vec<String>,
    pub extra: Vec<String>,
    pub mismatched: Vec<String>,
}

impl CheckReport {
    pub fn is_clean(&self) -> bool {
        self.missing.is_empty() && self.extra.is_empty() && self.mismatched.is_empty()
    }
}

pub async fn check(job: &Job) -> Result<CheckReport, DownloadError> {
    let s = &job.settings;
    let target = target(job)?;
    let api = api(job)?;
    let period = Period::compute(s, job.now, None);
    let mut r = CheckReport::default();
    let mut seen: HashSet<String> = HashSet::new();
    // Calls of the period (id → start): a screen recording of one of them is in its folder.
    let mut calls = std::collections::HashMap::new();
    for path in [s.recordings_uri.as_str(), SCREEN_RECORDINGS_URI] {
        let mut url = Some(api.listing_url(path, period.start, period.end));
        let mut first = true;
        let mut walk = super::api::PageWalk::default();
        while let Some(u) = url.take() {
            walk.visit(&u)?;
            let page = match api.page(&u).await {
                Err(DownloadError::Api(m)) if first && path == SCREEN_RECORDINGS_URI && m.contains("HTTP 404") => break,
                other => other?,
            };
            first = false;
            for raw in page.recordings {
                let in_call = if path == SCREEN_RECORDINGS_URI {
                    serde_json::from_str::<serde_json::Value>(raw.get()).ok().and_then(|d| {
                        let c = record::call_of(&d)?;
                        calls.get(c).map(|t| record::InCall { call: c.to_string(), start: *t })
                    })
                } else {
                    None
                };
                let p = match job.plan_record(raw, in_call.as_ref()) {
                    Ok(p) => p,
                    Err(e) => {
                        r.missing.push(format!("unusable recording in the listing: {e}"));
                        continue;
                    }
                };
                if path != SCREEN_RECORDINGS_URI && period.contains(p.start) {
                    calls.insert(p.id.clone(), p.start);
                }
                let owner = in_call.as_ref().map_or(p.id.as_str(), |c| c.call.as_str());
                if !period.contains(p.start) || layout::instance_of(owner, s.total_instances) != s.instance_id {
                    continue;
                }
                r.recordings += 1;
                seen.insert(p.id.clone());
                let dir = p.dir(&target);
                // A call's folder holds its screen recordings' folder.
                let mut expected: HashSet<String> = HashSet::from([META_FILE.to_string(), layout::SCREEN_DIR.into()]);
                if !dir.join(META_FILE).is_file() {
                    r.missing.push(format!("{}: {META_FILE}", p.id));
                }
                for m in &p.files {
                    r.files += 1;
                    expected.insert(m.name.clone());
                    match std::fs::metadata(dir.join(&m.name)) {
                        Err(_) => r.missing.push(format!("{}: {}", p.id, m.name)),
                        Ok(md) => {
                            if m.size.is_some_and(|s| s != md.len()) {
                                r.mismatched.push(format!(
                                    "{}: {}: {} bytes, the metadata states {}",
                                    p.id,
                                    m.name,
                                    md.len(),
                                    m.size.unwrap_or(0)
                                ));
                            }
                        }
                    }
                }
                if let Ok(rd) = std::fs::read_dir(&dir) {
                    for e in rd.flatten() {
                        let name = e.file_name().to_string_lossy().into_owned();
                        if !expected.contains(&name) {
                            r.extra.push(format!("{}: {name}", p.id));
                        }
                    }
                }
            }
            url = page.next_uri;
        }
    }
    // Recording folders of the period that the API does not list.
    for e in walkdir::WalkDir::new(&target)
        .into_iter()
        .filter_entry(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .flatten()
    {
        if e.file_name() != META_FILE {
            continue;
        }
        let Some(dir) = e.path().parent() else { continue };
        let id = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if seen.contains(&id) {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(e.path()) else { continue };
        let Ok(doc) = serde_json::from_str::<serde_json::Value>(&text) else { continue };
        if let Ok((_, start)) = record::id_and_start(&doc) {
            if start >= period.start
                && start < period.end
                && layout::instance_of(&id, s.total_instances) == s.instance_id
            {
                r.extra.push(format!("{id}: a recording folder the API does not list ({})", dir.display()));
            }
        }
    }
    Ok(r)
}
