//! The rules every node shares, kept in the catalog (GIR keeps MLM rules centrally, in the RWS
//! settings that every node polls).
//!
//! A rule is stored as its rule file's TOML text ([`super::rules`] syntax), validated by
//! [`rules::parse_rule`] (so by the one task check, [`super::validate::check_tasks`]) before
//! anything is written. Storage is two catalog state namespaces: [`NAMESPACE`] holds each
//! rule's latest [`Version`] by name, [`VERSIONS`] every version ever written (key
//! `<name>#<version, 10 digits>`). Each write is made under the catalog lease [`LEASE`] (and a
//! lock of this process), so versions are numbered without gaps or duplicates across nodes.
//!
//! - [`apply`]: a text whose rule differs from the stored one is a new version (the old one is
//!   kept); the same text again is a no-op ([`Outcome::Unchanged`]).
//! - [`delete`]: a tombstone version (no text), naming who deleted it and when; the rule stops
//!   on every node at its next poll. Applying the rule again later makes a new version.
//! - [`sync_dir`]: the node's `rules_dir` as a source. Each file's rule is applied when its text
//!   is one the catalog never held for that rule (the file was added or changed); a file whose
//!   text was already stored once is left alone, so an edit or a delete made in the catalog
//!   (CLI, API, pages) is never undone by an unchanged file, and two nodes whose folders differ
//!   do not overwrite each other at every start. Daemons call it at start and at every poll.
//! - [`load`]: the live rules, parsed again (problems named `catalog:<name> v<n>` and line).
//!
//! Who: `cli:<user>`, `api:<user>`, `web:<user>` or `file:<node path>`; when: the caller's clock.

use super::rules::{self, Rule, RuleProblem};
use crate::catalog::{namespaces, Catalog, CatalogError};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::path::Path;

/// Each rule's latest version (or tombstone), by rule name.
pub const NAMESPACE: &str = namespaces::RULES;
/// Every version of every rule, key `<name>#<version:010>`.
pub const VERSIONS: &str = namespaces::RULE_VERSIONS;
/// The lease held while the shared rules are written.
pub const LEASE: &str = "rules/write";

/// One version of a rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Version {
    pub name: String,
    /// 1, 2, 3… per rule, tombstones included.
    pub version: u64,
    /// The rule file's text; `None` for a tombstone (the rule was deleted).
    pub text: Option<String>,
    /// Who wrote it: `cli:<user>`, `api:<user>`, `web:<user>`, `file:<node path>`.
    pub by: String,
    pub at: DateTime<Utc>,
    /// Where the text came from (a file, `(request body)`, `(pasted text)`), or `deleted`.
    pub source: String,
}

impl Version {
    pub fn deleted(&self) -> bool {
        self.text.is_none()
    }
}

/// What [`apply`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The first version of the rule, or the first after its tombstone.
    Created,
    /// A new version replaced the latest one (kept in the history).
    Updated,
    /// The same text as the latest version: nothing written.
    Unchanged,
}

/// A rule applied: the rule, its latest version, and what happened.
#[derive(Debug, Clone)]
pub struct Applied {
    pub rule: Rule,
    pub version: Version,
    pub outcome: Outcome,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The text does not validate: every problem, each naming its file and line.
    #[error("{}", .0.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<RuleProblem>),
    #[error("no rule named {0} in the catalog")]
    NoRule(String),
    #[error("the shared rules are being written by {0}; try again")]
    Busy(String),
    #[error("stored rule record {key}: {why}")]
    Corrupt { key: String, why: String },
    #[error(transparent)]
    Catalog(#[from] CatalogError),
}

fn version_key(name: &str, version: u64) -> String {
    format!("{name}#{version:010}")
}

fn decode(key: &str, value: &str) -> Result<Version, StoreError> {
    serde_json::from_str(value).map_err(|e| StoreError::Corrupt { key: key.to_string(), why: e.to_string() })
}

/// The latest version of `name` (a tombstone included), if the rule was ever stored.
pub fn head(catalog: &dyn Catalog, name: &str) -> Result<Option<Version>, StoreError> {
    catalog.state_get(NAMESPACE, name)?.map(|v| decode(name, &v)).transpose()
}

/// Every rule's latest version, tombstones included, in name order.
pub fn heads(catalog: &dyn Catalog) -> Result<Vec<Version>, StoreError> {
    catalog.state_list(NAMESPACE)?.iter().map(|(k, v)| decode(k, v)).collect()
}

/// Every version of `name`, oldest first.
pub fn history(catalog: &dyn Catalog, name: &str) -> Result<Vec<Version>, StoreError> {
    let mut out = Vec::new();
    for (k, v) in catalog.state_list(VERSIONS)? {
        if k.rsplit_once('#').is_some_and(|(n, _)| n == name) {
            let v = decode(&k, &v)?;
            if v.name == name {
                out.push(v);
            }
        }
    }
    out.sort_by_key(|v| v.version);
    Ok(out)
}

/// Holds the catalog lease [`LEASE`] (and this process's lock) while the shared rules are
/// written; released on drop.
struct WriteLock<'a> {
    catalog: &'a dyn Catalog,
    _local: std::sync::MutexGuard<'static, ()>,
}

impl<'a> WriteLock<'a> {
    fn take(catalog: &'a dyn Catalog) -> Result<Self, StoreError> {
        static LOCAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let local = LOCAL.lock().unwrap_or_else(|p| p.into_inner());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            if super::lease::acquire(catalog, LEASE, 30)? {
                return Ok(WriteLock { catalog, _local: local });
            }
            if std::time::Instant::now() > deadline {
                let who = catalog.lease_list(LEASE)?.into_iter().next().map(|l| l.holder).unwrap_or_default();
                return Err(StoreError::Busy(who));
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
}

impl Drop for WriteLock<'_> {
    fn drop(&mut self) {
        if let Err(e) = self.catalog.lease_release(LEASE, &super::lease::holder()) {
            tracing::warn!(error = %e, "cannot release the rules' write lease; it expires by itself");
        }
    }
}

/// Writes version `v` (history first, then the latest), under the write lock.
fn write(catalog: &dyn Catalog, v: &Version) -> Result<(), StoreError> {
    let json = serde_json::to_string(v).map_err(|e| StoreError::Corrupt { key: v.name.clone(), why: e.to_string() })?;
    catalog.state_put(VERSIONS, &version_key(&v.name, v.version), &json)?;
    catalog.state_put(NAMESPACE, &v.name, &json)?;
    Ok(())
}

/// Validates a rule file's text (`file` names it in problems; with `probe`, backup locations
/// are probed as `reclife rules validate` does) and stores it as the rule's new version,
/// unless the latest version holds the same text.
#[allow(clippy::too_many_arguments)]
pub fn apply(
    catalog: &dyn Catalog,
    file: &Path,
    text: &str,
    default_location: Option<&str>,
    probe: bool,
    by: &str,
    at: DateTime<Utc>,
) -> Result<Applied, StoreError> {
    let mut rule = rules::parse_rule(file, text, default_location, probe).map_err(StoreError::Invalid)?;
    rule.file = None;
    let _lock = WriteLock::take(catalog)?;
    let old = head(catalog, &rule.name)?;
    if let Some(old) = old.as_ref().filter(|o| o.text.as_deref() == Some(text)) {
        return Ok(Applied { rule, version: old.clone(), outcome: Outcome::Unchanged });
    }
    let outcome = if old.as_ref().is_some_and(|o| !o.deleted()) { Outcome::Updated } else { Outcome::Created };
    let v = Version {
        name: rule.name.clone(),
        version: old.map_or(1, |o| o.version + 1),
        text: Some(text.to_string()),
        by: by.to_string(),
        at,
        source: file.display().to_string(),
    };
    write(catalog, &v)?;
    tracing::info!(rule = %v.name, version = v.version, by = %v.by, source = %v.source, "rule stored in the catalog");
    Ok(Applied { rule, version: v, outcome })
}

/// Deletes a rule: a tombstone version naming who and when. The rule stops on every node at
/// its next poll; its versions stay in the history.
pub fn delete(catalog: &dyn Catalog, name: &str, by: &str, at: DateTime<Utc>) -> Result<Version, StoreError> {
    let _lock = WriteLock::take(catalog)?;
    let old = head(catalog, name)?.filter(|o| !o.deleted()).ok_or_else(|| StoreError::NoRule(name.to_string()))?;
    let v = Version {
        name: name.to_string(),
        version: old.version + 1,
        text: None,
        by: by.to_string(),
        at,
        source: "deleted".into(),
    };
    write(catalog, &v)?;
    tracing::info!(rule = %name, version = v.version, by = %by, "rule deleted from the catalog (tombstone kept)");
    Ok(v)
}

/// What [`load`] answers: the live rules with their versions, and the problems.
pub type Loaded = (Vec<(Rule, Version)>, Vec<RuleProblem>);

/// The live rules (tombstones left out), each with its latest version, and the problems of
/// stored texts that no longer validate (named `catalog:<name> v<n>`, with their lines).
pub fn load(catalog: &dyn Catalog, default_location: Option<&str>) -> Result<Loaded, StoreError> {
    let mut out = Vec::new();
    let mut problems = Vec::new();
    for v in heads(catalog)? {
        let Some(text) = v.text.as_deref() else { continue };
        let origin = format!("catalog:{} v{}", v.name, v.version);
        match rules::parse_rule(Path::new(&origin), text, default_location, false) {
            Ok(mut r) => {
                r.file = None;
                out.push((r, v));
            }
            Err(mut p) => problems.append(&mut p),
        }
    }
    Ok((out, problems))
}

/// What [`sync_dir`] did.
#[derive(Debug, Default)]
pub struct Synced {
    /// Files whose rule was stored (created or updated).
    pub applied: Vec<Applied>,
    /// Files left out, each problem naming its file and line.
    pub problems: Vec<RuleProblem>,
}

/// Applies the rules folder `dir` as a source (see the module docs): each file's rule is
/// stored when the catalog never held its text for that rule. Backup locations are not
/// probed (a run reports an unwritable one).
pub fn sync_dir(
    catalog: &dyn Catalog,
    dir: &Path,
    default_location: Option<&str>,
    by: &str,
    at: DateTime<Utc>,
) -> Result<Synced, StoreError> {
    let (found, problems) = rules::load_dir(dir, default_location, false);
    let mut out = Synced { applied: Vec::new(), problems };
    if found.is_empty() {
        return Ok(out);
    }
    let mut seen: HashSet<(String, String)> = HashSet::new();
    for (k, v) in catalog.state_list(VERSIONS)? {
        let v = decode(&k, &v)?;
        if let Some(t) = v.text {
            seen.insert((v.name, t));
        }
    }
    for r in found {
        let Some(file) = r.file else { continue };
        let text = match std::fs::read_to_string(&file) {
            Ok(t) => t,
            Err(e) => {
                out.problems.push(RuleProblem { file, line: None, message: format!("cannot read: {e}") });
                continue;
            }
        };
        if seen.contains(&(r.name.clone(), text.clone())) {
            continue;
        }
        match apply(catalog, &file, &text, default_location, false, by, at) {
            Ok(a) if a.outcome == Outcome::Unchanged => {}
            Ok(a) => out.applied.push(a),
            Err(StoreError::Invalid(mut p)) => out.problems.append(&mut p),
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// A file name for a rule's export: `Daily backup` → `daily-backup.toml`.
pub fn file_name(name: &str) -> String {
    let slug: String = name.to_lowercase().chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
    let slug = slug.split('-').filter(|p| !p.is_empty()).collect::<Vec<_>>().join("-");
    format!("{}.toml", if slug.is_empty() { "rule" } else { &slug })
}

#[cfg(test)]
mod tests {
    #[test]
    fn export_file_names() {
        assert_eq!(super::file_name("Nightly  PURGE!"), "nightly-purge.toml");
        assert_eq!(super::file_name("…"), "rule.toml");
    }
}
