//! What an import source keeps in the catalog (so every node sharing the catalog sees it, and
//! it survives anything): the cursor, the retry buffer, the last batch's report and the alerts.
//!
//! Namespaces: [`CURSOR`] (key: source), [`RETRY`] (key: `<source>/<conversation id>`),
//! [`LAST_BATCH`] (key: source), [`ALERTS`] (key: `<source>/<time>-<n>`, the newest
//! [`ALERTS_KEPT`] per source), [`DELETIONS`] (key: `<source>/<conversation id>`: recordings
//! to delete in Genesys Cloud once the conversation is stored), [`COUNTERS`] (key:
//! `<source>/<counter>`: running totals for `/metrics`: `imported`, `failed`,
//! `alert/<message>`).

use super::ImportError;
use crate::catalog::{namespaces, Catalog};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

pub const CURSOR: &str = namespaces::IMPORT_CURSOR;
pub const RETRY: &str = namespaces::IMPORT_RETRY;
pub const LAST_BATCH: &str = namespaces::IMPORT_LAST_BATCH;
pub const ALERTS: &str = namespaces::IMPORT_ALERTS;
pub const DELETIONS: &str = namespaces::IMPORT_DELETIONS;
pub const COUNTERS: &str = namespaces::IMPORT_COUNTERS;
pub const ALERTS_KEPT: usize = 200;

/// The seed's cursor time format (UTC).
pub const CURSOR_TIME: &str = "%Y.%m.%d %H:%M:%S%.3f";

/// Where a source resumes: conversations that started before `at`, or at `at` with an id not
/// after `id`, are done (imported, or in the retry buffer). Shown as `id;yyyy.MM.dd HH:mm:ss.SSS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub id: String,
    pub at: DateTime<Utc>,
}

impl Cursor {
    /// True when a conversation is already behind the cursor.
    pub fn passed(&self, start: DateTime<Utc>, id: &str) -> bool {
        start < self.at || (start == self.at && id <= self.id.as_str())
    }

    /// Parses the seed's form; the error says what was expected.
    pub fn parse(s: &str) -> Result<Cursor, String> {
        let (id, t) = s
            .trim()
            .rsplit_once(';')
            .ok_or_else(|| format!("cursor {s:?}: expected <conversation id>;yyyy.MM.dd HH:mm:ss.SSS"))?;
        let at = chrono::NaiveDateTime::parse_from_str(t.trim(), CURSOR_TIME)
            .map_err(|e| format!("cursor {s:?}: time {t:?}: {e} (expected yyyy.MM.dd HH:mm:ss.SSS)"))?
            .and_utc();
        if id.contains(['\n', '\r']) {
            return Err(format!("cursor {s:?}: the id holds a line break"));
        }
        Ok(Cursor { id: id.trim().to_string(), at })
    }
}

impl std::fmt::Display for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{};{}", self.id, self.at.format(CURSOR_TIME))
    }
}

/// A conversation waiting in the retry buffer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RetryEntry {
    pub conversation_id: String,
    pub reason: String,
    pub added: DateTime<Utc>,
    /// Runs that took it and failed again.
    #[serde(default)]
    pub attempts: u32,
}

/// One alert the source raised (the seed's five, plus the batch report).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Alert {
    pub at: DateTime<Utc>,
    pub source: String,
    /// The seed's message, e.g. "CDR placed in retry buffer".
    pub message: String,
    pub detail: String,
}

fn cat<T>(r: Result<T, crate::catalog::CatalogError>) -> Result<T, ImportError> {
    r.map_err(ImportError::Catalog)
}

/// The saved cursor of a source, if any.
pub fn cursor(c: &dyn Catalog, source: &str) -> Result<Option<Cursor>, ImportError> {
    match cat(c.state_get(CURSOR, source))? {
        None => Ok(None),
        Some(t) => {
            Cursor::parse(&t).map(Some).map_err(|m| ImportError::State { source_name: source.into(), message: m })
        }
    }
}

pub fn set_cursor(c: &dyn Catalog, source: &str, cur: &Cursor) -> Result<(), ImportError> {
    cat(c.state_put(CURSOR, source, &cur.to_string()))
}

fn retry_key(source: &str, id: &str) -> String {
    format!("{source}/{id}")
}

/// The retry buffer of a source, oldest first.
pub fn retry_list(c: &dyn Catalog, source: &str) -> Result<Vec<RetryEntry>, ImportError> {
    let prefix = format!("{source}/");
    let mut out = Vec::new();
    for (k, v) in cat(c.state_list(RETRY))? {
        if !k.starts_with(&prefix) {
            continue;
        }
        match serde_json::from_str::<RetryEntry>(&v) {
            Ok(e) => out.push(e),
            Err(e) => tracing::warn!(entry = %k, error = %e, "unreadable retry buffer entry left in place"),
        }
    }
    out.sort_by(|a, b| (a.added, &a.conversation_id).cmp(&(b.added, &b.conversation_id)));
    Ok(out)
}

/// Puts a conversation in the retry buffer (or updates its reason and attempts).
pub fn retry_put(c: &dyn Catalog, source: &str, e: &RetryEntry) -> Result<(), ImportError> {
    let text = serde_json::to_string(e).map_err(|x| ImportError::Other(x.to_string()))?;
    cat(c.state_put(RETRY, &retry_key(source, &e.conversation_id), &text))
}

/// Removes a conversation from the retry buffer; false when it was not there.
pub fn retry_remove(c: &dyn Catalog, source: &str, id: &str) -> Result<bool, ImportError> {
    let key = retry_key(source, id);
    if cat(c.state_get(RETRY, &key))?.is_none() {
        return Ok(false);
    }
    cat(c.state_delete(RETRY, &key))?;
    Ok(true)
}

/// Notes the recordings of a conversation to delete in the cloud.
pub fn deletion_put(
    c: &dyn Catalog,
    source: &str,
    conversation: &str,
    recordings: &Vec<String>,
) -> Result<(), ImportError> {
    let text = serde_json::to_string(recordings).map_err(|x| ImportError::Other(x.to_string()))?;
    cat(c.state_put(DELETIONS, &retry_key(source, conversation), &text))
}

pub fn deletion_done(c: &dyn Catalog, source: &str, conversation: &str) -> Result<(), ImportError> {
    cat(c.state_delete(DELETIONS, &retry_key(source, conversation)))
}

/// Conversations noted for deletion, with their recording ids.
pub fn deletions(c: &dyn Catalog, source: &str) -> Result<Vec<(String, Vec<String>)>, ImportError> {
    let prefix = format!("{source}/");
    let mut out = Vec::new();
    for (k, v) in cat(c.state_list(DELETIONS))? {
        if let (Some(id), Ok(r)) = (k.strip_prefix(&prefix), serde_json::from_str::<Vec<String>>(&v)) {
            out.push((id.to_string(), r));
        }
    }
    Ok(out)
}

/// Adds `n` to a running total of a source.
pub fn bump(c: &dyn Catalog, source: &str, counter: &str, n: u64) -> Result<(), ImportError> {
    let key = format!("{source}/{counter}");
    let now: u64 = cat(c.state_get(COUNTERS, &key))?.and_then(|v| v.parse().ok()).unwrap_or(0);
    cat(c.state_put(COUNTERS, &key, &(now + n).to_string()))
}

/// The running totals of a source, by counter.
pub fn counters(c: &dyn Catalog, source: &str) -> Result<std::collections::BTreeMap<String, u64>, ImportError> {
    let prefix = format!("{source}/");
    Ok(cat(c.state_list(COUNTERS))?
        .into_iter()
        .filter_map(|(k, v)| Some((k.strip_prefix(&prefix)?.to_string(), v.parse().ok()?)))
        .collect())
}

/// The batch report's alert (the seed's per-batch migration status).
pub const BATCH_ALERT: &str = "Migration status";

/// Records an alert: logged, kept (the oldest beyond [`ALERTS_KEPT`] are dropped), counted,
/// and, with `outbox` (the node has `[notify]`), queued in the notification outbox as
/// `{"event":"import.alert"|"import.batch","source","alert","detail","at"[,"report"]}`.
pub fn raise(
    c: &dyn Catalog,
    source: &str,
    message: &str,
    detail: &str,
    at: DateTime<Utc>,
    outbox: bool,
    report: Option<&serde_json::Value>,
) -> Result<(), ImportError> {
    if message == BATCH_ALERT {
        tracing::info!(source, alert = message, detail, "import batch");
    } else {
        tracing::warn!(source, alert = message, detail, "import alert");
    }
    let a = Alert { at, source: source.into(), message: message.into(), detail: detail.into() };
    let text = serde_json::to_string(&a).map_err(|x| ImportError::Other(x.to_string()))?;
    let stamp = format!("{}-{}", at.format("%Y%m%dT%H%M%S%.6f"), crate::storage::retry::token());
    let key = format!("{source}/{stamp}");
    cat(c.state_put(ALERTS, &key, &text))?;
    bump(c, source, &format!("alert/{message}"), 1)?;
    if outbox {
        let mut ev = serde_json::json!({
            "event": if message == BATCH_ALERT { "import.batch" } else { "import.alert" },
            "source": source, "alert": message, "detail": detail,
            "at": at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        });
        if let Some(r) = report {
            ev["report"] = r.clone();
        }
        let entry = crate::lifecycle::outbox::event_entry(ev);
        cat(c.state_put(crate::lifecycle::outbox::NAMESPACE, &format!("import/{key}"), &entry))?;
    }
    let prefix = format!("{source}/");
    let mut keys: Vec<String> =
        cat(c.state_list(ALERTS))?.into_iter().map(|(k, _)| k).filter(|k| k.starts_with(&prefix)).collect();
    if keys.len() > ALERTS_KEPT {
        keys.sort();
        for k in &keys[..keys.len() - ALERTS_KEPT] {
            cat(c.state_delete(ALERTS, k))?;
        }
    }
    Ok(())
}

/// The alerts of a source, oldest first.
pub fn alerts(c: &dyn Catalog, source: &str) -> Result<Vec<Alert>, ImportError> {
    let prefix = format!("{source}/");
    let mut list: Vec<(String, String)> =
        cat(c.state_list(ALERTS))?.into_iter().filter(|(k, _)| k.starts_with(&prefix)).collect();
    list.sort();
    Ok(list.into_iter().filter_map(|(_, v)| serde_json::from_str(&v).ok()).collect())
}

/// Runs a catalog call off the async runtime.
pub async fn blocking<T, F>(catalog: &Arc<dyn Catalog>, f: F) -> Result<T, ImportError>
where
    F: FnOnce(&dyn Catalog) -> Result<T, ImportError> + Send + 'static,
    T: Send + 'static,
{
    let c = catalog.clone();
    tokio::task::spawn_blocking(move || f(c.as_ref()))
        .await
        .map_err(|e| ImportError::Other(format!("worker failed: {e}")))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trip_and_order() {
        let s = "c84f2f698fc9d64d64ed161d87b00c25_I_251182078220051266_19d0243a-9fd0-11d1-ac11-13453884b96c;2023.02.02 07:00:00.000";
        let c = Cursor::parse(s).unwrap();
        assert_eq!(c.to_string(), s);
        assert_eq!(c.at, "2023-02-02T07:00:00Z".parse::<DateTime<Utc>>().unwrap());
        assert!(c.passed("2023-02-02T06:59:59.999Z".parse().unwrap(), "zzz"));
        assert!(!c.passed("2023-02-02T07:00:00.001Z".parse().unwrap(), "a"));
        let e = Cursor::parse("abc;2023-02-02T07:00:00Z").unwrap_err();
        assert!(e.contains("yyyy.MM.dd"), "{e}");
        assert!(Cursor::parse("no separator").is_err());
        assert_eq!(Cursor::parse(";2024.01.01 00:00:00.000").unwrap().id, "");
    }
}
