//! Rules: one TOML document per rule, kept in the catalog ([`super::rule_store`], shared by
//! every node) and read from the rules folder (config `rules_dir`) as a source.
//!
//! In: TOML text such as
//! ```toml
//! name = "Backup and purge"
//! enabled = true
//! schedule = "0 0 2 * * *"          # sec min hour dom month dow, always UTC
//! [[tasks]]
//! type = "backup"
//! filter = { recording_type = "voice", min_age = 365 }
//! include_screen = true
//! location = "file:///var/backups/recordings"
//! [[tasks]]
//! type = "purge"
//! filter = { recording_type = "voice", min_age = 365 }
//! include_screen = true
//! ```
//! An import task runs a configured import source (`[import.<name>]`) once per fire; the rule's
//! `node_path` is GIR's "Execute Only on Selected Servers":
//! ```toml
//! [[tasks]]
//! type = "import"
//! source = "gc"
//! ```
//! GIR spellings are accepted as aliases (`filterType`, `minAge`, `maxAge`, `callType`,
//! `executeOnScreenRecording`, `useFullPathInMediaFileBackup`). Out: a checked [`Rule`], or every
//! [`RuleProblem`] found, each naming its file and line.
//!
//! Ages: age = now − startTime. `min_age = N` selects age ≥ N days, `max_age = M` selects
//! age < M days; an unset bound is unbounded (and written as 0 in archive names).

use crate::catalog::Query;
use crate::model::Kind;
use crate::storage::Location;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use toml::Spanned;

/// Backup, purge, or import (a run of a configured import source, `source = "NAME"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    Backup,
    Purge,
    Import,
}

/// What happens to the following tasks when this one fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnFailure {
    #[default]
    Stop,
    Continue,
}

/// Which recordings a task selects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    #[serde(alias = "filterType", default = "voice")]
    pub recording_type: Kind,
    #[serde(alias = "minAge", default, skip_serializing_if = "Option::is_none")]
    pub min_age: Option<u32>,
    #[serde(alias = "maxAge", default, skip_serializing_if = "Option::is_none")]
    pub max_age: Option<u32>,
    #[serde(alias = "callType", default, skip_serializing_if = "Option::is_none")]
    pub call_type: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels_include: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels_exclude: Vec<String>,
    /// Attached data: the key's current value (its last `added`/`updated` in `eventHistory`,
    /// none after a `deleted`) equals this, for every key.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attached_data: BTreeMap<String, String>,
    /// Attached data: the key's current value is not this (a key without a value matches), for
    /// every key. GIR's selective recording: `attached_data_not = { keep_recording = "yes" }`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attached_data_not: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub partitions: Vec<String>,
}

fn voice() -> Kind {
    Kind::Voice
}

impl Default for Filter {
    fn default() -> Self {
        Filter {
            recording_type: Kind::Voice,
            min_age: None,
            max_age: None,
            call_type: None,
            labels_include: Vec::new(),
            labels_exclude: Vec::new(),
            attached_data: BTreeMap::new(),
            attached_data_not: BTreeMap::new(),
            partitions: Vec::new(),
        }
    }
}

/// The largest age a filter may name, in days (100 years). Larger ones are refused by
/// validation; a query given one anyway saturates instead of overflowing.
pub const MAX_AGE_DAYS: u32 = 36_500;

/// `now − days`, saturating at the earliest representable time instead of panicking.
pub fn days_before(now: DateTime<Utc>, days: u32) -> DateTime<Utc> {
    now.checked_sub_signed(Duration::days(i64::from(days))).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

impl Filter {
    /// The catalog query at `now`: start ≥ now − max_age days and start < now − min_age days.
    pub fn query(&self, now: DateTime<Utc>, region: Option<&str>, scan_intervals_per_day: u32) -> Query {
        Query {
            kind: Some(self.recording_type),
            start_from: self.max_age.map(|d| days_before(now, d)),
            start_to: self.min_age.map(|d| days_before(now, d)),
            region: region.map(str::to_string),
            call_type: self.call_type.clone(),
            labels_include: self.labels_include.clone(),
            labels_exclude: self.labels_exclude.clone(),
            attached: self.attached_data.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            attached_not: self.attached_data_not.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            partitions: self.partitions.clone(),
            scan_intervals_per_day,
            ..Query::default()
        }
    }
}

/// One task of a rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task {
    pub op: Op,
    pub filter: Filter,
    /// GIR `executeOnScreenRecording`: a voice task also takes the calls' screen recordings.
    pub include_screen: bool,
    pub on_failure: OnFailure,
    /// Backup location URI; `None`: the node's `default_backup_location`.
    pub location: Option<String>,
    pub zip: bool,
    /// GIR `useFullPathInMediaFileBackup`.
    pub use_full_path: bool,
    /// A purge of every age (`min_age` unset or 0), confirmed (see [`super::validate`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub all_ages: bool,
    /// An import task's source (`[import.<source>]` of the node's configuration).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// What a daemon started after downtime does with a fire time it missed (`catch_up`, per rule
/// or, as the default of its rules, per node).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum CatchUp {
    /// Run the missed fire at start-up, every task of it.
    All,
    /// Run only the backup tasks of the missed fire at start-up; its purges wait for the
    /// rule's next scheduled fire (the default: a late backup loses nothing, a purge at an
    /// hour nobody scheduled may run into the working day or ahead of a backup elsewhere).
    #[default]
    Backups,
    /// Skip the missed fire; the rule runs at its next scheduled fire.
    None,
}

/// A rule: a schedule and ordered tasks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    pub name: String,
    pub enabled: bool,
    /// Cron with seconds (`sec min hour dom month dow`), UTC.
    pub schedule: String,
    pub node_path: Option<String>,
    /// What to do with a fire missed while the node was down; unset: the node's `catch_up`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catch_up: Option<CatchUp>,
    pub tasks: Vec<Task>,
    /// The file it came from.
    #[serde(skip)]
    pub file: Option<PathBuf>,
}

impl Rule {
    /// Things that are allowed but probably not meant: a purge with no backup before it in the
    /// rule (what it deletes is in no archive this rule wrote).
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (i, t) in self.tasks.iter().enumerate() {
            if t.op == Op::Purge && !self.tasks[..i].iter().any(|b| b.op == Op::Backup) {
                let file = self.file.as_ref().map(|f| format!("{}: ", f.display())).unwrap_or_default();
                out.push(format!(
                    "{file}warning: rule [{}] task {} purges without backing up first: what it deletes is in no archive of this rule",
                    self.name,
                    i + 1
                ));
            }
        }
        out
    }

    /// True when a node with `node_path` runs this rule (a rule without a node path runs anywhere).
    pub fn runs_on(&self, node_path: Option<&str>) -> bool {
        match &self.node_path {
            None => true,
            Some(p) => Some(p.as_str()) == node_path,
        }
    }
}

/// A problem in a rule file, with its line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleProblem {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub message: String,
}

impl std::fmt::Display for RuleProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}:{l}: {}", self.file.display(), self.message),
            None => write!(f, "{}: {}", self.file.display(), self.message),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    name: Spanned<String>,
    #[serde(default = "yes")]
    enabled: bool,
    schedule: Spanned<String>,
    #[serde(default)]
    node_path: Option<String>,
    #[serde(default)]
    catch_up: Option<CatchUp>,
    #[serde(default)]
    tasks: Vec<Spanned<RawTask>>,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTask {
    #[serde(rename = "type")]
    op: Op,
    #[serde(default)]
    filter: Option<Spanned<Filter>>,
    #[serde(default, alias = "executeOnScreenRecording")]
    include_screen: bool,
    #[serde(default)]
    on_failure: OnFailure,
    #[serde(default)]
    location: Option<Spanned<String>>,
    #[serde(default)]
    zip: Option<bool>,
    #[serde(default, alias = "useFullPathInMediaFileBackup")]
    use_full_path: bool,
    #[serde(default)]
    all_ages: bool,
    #[serde(default)]
    source: Option<String>,
}

/// Parses the cron expression the way tokio-cron-scheduler does (seconds required).
pub fn parse_cron(expr: &str) -> Result<croner::Cron, String> {
    croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Required)
        .dom_and_dow(true)
        .build()
        .parse(expr)
        .map_err(|e| e.to_string())
}

fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset).unwrap_or(text).matches('\n').count() + 1
}

/// Parses one rule file's text. `default_location` is the node's `default_backup_location`.
/// With `check_locations`, a backup location must be writable now (validation does this; a run
/// reports an unwritable location as a task failure instead).
pub fn parse_rule(
    file: &Path,
    text: &str,
    default_location: Option<&str>,
    check_locations: bool,
) -> Result<Rule, Vec<RuleProblem>> {
    let problem = |line: Option<usize>, message: String| RuleProblem { file: file.to_path_buf(), line, message };
    let raw: RawRule = toml::from_str(text).map_err(|e| {
        let line = e.span().map(|s| line_of(text, s.start));
        vec![problem(line, e.message().trim().to_string())]
    })?;
    let mut problems = Vec::new();
    let name = raw.name.get_ref().trim().to_string();
    if name.is_empty() {
        problems.push(problem(Some(line_of(text, raw.name.span().start)), "the rule name is empty".into()));
    }
    if let Err(e) = parse_cron(raw.schedule.get_ref()) {
        problems.push(problem(
            Some(line_of(text, raw.schedule.span().start)),
            format!(
                "bad cron expression {:?} (expected `sec min hour dom month dow`, UTC): {e}",
                raw.schedule.get_ref()
            ),
        ));
    }
    if raw.tasks.is_empty() {
        problems.push(problem(None, "the rule has no tasks".into()));
    }
    let mut tasks = Vec::new();
    // Per task: the lines of the task, its filter and its location, for the problems' lines.
    let mut lines = Vec::new();
    for (i, st) in raw.tasks.into_iter().enumerate() {
        let task_line = Some(line_of(text, st.span().start));
        let t = st.into_inner();
        let filter_line = t.filter.as_ref().map(|f| line_of(text, f.span().start)).or(task_line);
        let loc_line = t.location.as_ref().map(|l| line_of(text, l.span().start)).or(task_line);
        lines.push((task_line, filter_line, loc_line));
        if t.op == Op::Purge && t.zip.is_some() && t.location.is_none() && !t.use_full_path {
            problems.push(problem(task_line, format!("task {}: {}", i + 1, super::validate::BACKUP_ONLY)));
        }
        if t.op == Op::Import && (t.zip.is_some() || t.filter.is_some()) {
            problems.push(problem(task_line, format!("task {}: {}", i + 1, super::validate::NOT_FOR_IMPORT)));
        }
        tasks.push(Task {
            op: t.op,
            filter: t.filter.map(Spanned::into_inner).unwrap_or_default(),
            include_screen: t.include_screen,
            on_failure: t.on_failure,
            location: t.location.map(Spanned::into_inner),
            zip: t.zip.unwrap_or(true),
            use_full_path: t.use_full_path,
            all_ages: t.all_ages,
            source: t.source,
        });
    }
    if !tasks.is_empty() {
        let how = super::validate::Checking { default_location, probe_locations: check_locations, sources: None };
        for p in super::validate::check_tasks(&tasks, how).err().unwrap_or_default() {
            let (task_line, filter_line, loc_line) = lines.get(p.task.wrapping_sub(1)).copied().unwrap_or_default();
            let line = match p.part {
                super::validate::Part::Task => task_line,
                super::validate::Part::Filter => filter_line,
                super::validate::Part::Location => loc_line,
            };
            problems.push(problem(line, p.to_string()));
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(Rule {
        name,
        enabled: raw.enabled,
        schedule: raw.schedule.into_inner(),
        node_path: raw.node_path,
        catch_up: raw.catch_up,
        tasks,
        file: Some(file.to_path_buf()),
    })
}

/// The location the shipped example rules carry until someone sets a real one.
pub const PLACEHOLDER: &str = "file:///CHANGE-ME";

/// True when every local user may write in `dir` (mode o+w, sticky or not, as /tmp is).
pub fn world_writable(dir: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(dir).is_ok_and(|m| m.permissions().mode() & 0o002 != 0)
}

/// A backup location this build can write: a local folder (`file://`), or an S3 or WebDAV
/// location (zip archives). With `probe`, a folder is created if missing and a file is written
/// and removed in it; a remote store is opened (its credentials must be set).
pub fn check_location(uri: &str, probe: bool) -> Result<Location, String> {
    match Location::parse(uri).map_err(|e| e.to_string())? {
        Location::File(p) => {
            if probe {
                std::fs::create_dir_all(&p).map_err(|e| format!("cannot create {}: {e}", p.display()))?;
                tempfile::Builder::new()
                    .prefix(".reclife-probe-")
                    .tempfile_in(&p)
                    .map_err(|e| format!("cannot write in {}: {e}", p.display()))?;
            }
            Ok(Location::File(p))
        }
        remote => {
            if probe {
                crate::storage::open(&remote).map_err(|e| e.to_string())?;
            }
            Ok(remote)
        }
    }
}

/// The local folder of a backup location, if it is one.
pub fn local_dir(uri: &str) -> Option<std::path::PathBuf> {
    match check_location(uri, false) {
        Ok(Location::File(p)) => Some(p),
        _ => None,
    }
}

/// Every rule in `dir` (`*.toml`, sorted by file name), and every problem found. Two rules with
/// one name are a problem too.
pub fn load_dir(dir: &Path, default_location: Option<&str>, check_locations: bool) -> (Vec<Rule>, Vec<RuleProblem>) {
    let mut rules: Vec<Rule> = Vec::new();
    let mut problems = Vec::new();
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml") && p.is_file())
            .collect(),
        Err(e) => {
            problems.push(RuleProblem {
                file: dir.to_path_buf(),
                line: None,
                message: format!("cannot read the rules folder: {e}"),
            });
            return (rules, problems);
        }
    };
    files.sort();
    for f in files {
        let text = match std::fs::read_to_string(&f) {
            Ok(t) => t,
            Err(e) => {
                problems.push(RuleProblem { file: f.clone(), line: None, message: format!("cannot read: {e}") });
                continue;
            }
        };
        match parse_rule(&f, &text, default_location, check_locations) {
            Ok(r) => {
                if let Some(other) = rules.iter().find(|o| o.name == r.name) {
                    problems.push(RuleProblem {
                        file: f.clone(),
                        line: None,
                        message: format!(
                            "rule name {:?} is also used by {}",
                            r.name,
                            other.file.as_deref().unwrap_or(Path::new("?")).display()
                        ),
                    });
                } else {
                    rules.push(r);
                }
            }
            Err(mut p) => problems.append(&mut p),
        }
    }
    (rules, problems)
}

/// State namespace of operators' enable/disable overrides (`reclife rules enable|disable`,
/// `POST /api/v1/rules/{name}/enable|disable`), keyed by rule name. An override wins over the
/// rule's `enabled` on every node sharing the catalog until `reclife rules reset` clears it, so
/// a rule can be paused in an incident without editing files on each node.
pub const OVERRIDES: &str = crate::catalog::namespaces::RULE_OVERRIDES;

/// The overrides in force, by rule name.
pub fn overrides(
    catalog: &dyn crate::catalog::Catalog,
) -> Result<BTreeMap<String, bool>, crate::catalog::CatalogError> {
    Ok(catalog.state_list(OVERRIDES)?.into_iter().map(|(k, v)| (k, v == "true")).collect())
}

/// Applies the overrides to rules loaded from their files.
pub fn apply_overrides(
    catalog: &dyn crate::catalog::Catalog,
    rules: &mut [Rule],
) -> Result<(), crate::catalog::CatalogError> {
    let o = overrides(catalog)?;
    for r in rules {
        if let Some(&on) = o.get(&r.name) {
            r.enabled = on;
        }
    }
    Ok(())
}

/// Enables or disables a rule of the catalog's shared rules (`Some`), or drops the override
/// (`None`), and answers the rule as it now stands. Enabling re-validates the stored text with
/// its backup locations probed, so a rule still pointing at a placeholder or an unusable folder
/// is refused.
pub async fn set_enabled(
    ctx: &crate::config::Context,
    name: &str,
    enabled: Option<bool>,
) -> Result<Rule, super::LifecycleError> {
    use super::LifecycleError;
    let (catalog, default) = (ctx.catalog.clone(), ctx.config.default_backup_location.clone());
    let key = name.to_string();
    let (mut rule, version) = super::blocking(move || {
        let (all, _) = super::rule_store::load(catalog.as_ref(), default.as_deref())?;
        Ok(all.into_iter().find(|(r, _)| r.name == key))
    })
    .await?
    .ok_or_else(|| LifecycleError::NoRule(name.to_string()))?;
    if enabled == Some(true) || (enabled.is_none() && rule.enabled) {
        let default = ctx.config.default_backup_location.clone();
        let problems = super::blocking(move || {
            let origin = format!("catalog:{} v{}", version.name, version.version);
            let text = version.text.unwrap_or_default();
            Ok(parse_rule(Path::new(&origin), &text, default.as_deref(), true).err())
        })
        .await?;
        if let Some(p) = problems {
            let why = p.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("; ");
            return Err(LifecycleError::Rule { rule: name.to_string(), why: format!("cannot be enabled: {why}") });
        }
    }
    let catalog = ctx.catalog.clone();
    let key = name.to_string();
    let file_enabled = rule.enabled;
    let now = super::blocking(move || {
        match enabled {
            Some(on) => catalog.state_put(OVERRIDES, &key, if on { "true" } else { "false" })?,
            None => {
                catalog.state_delete(OVERRIDES, &key)?;
            }
        }
        Ok(enabled.unwrap_or(file_enabled))
    })
    .await?;
    rule.enabled = now;
    tracing::info!(rule = name, enabled = now, override = enabled.is_some(), "rule override set");
    Ok(rule)
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"name = "Backup and purge"
enabled = true
schedule = "0 0 2 * * *"
[[tasks]]
type = "backup"
filter = { recording_type = "voice", min_age = 365 }
include_screen = true
location = "file:///tmp/reclife-rules-test"
zip = true
[[tasks]]
type = "purge"
filter = { recording_type = "voice", min_age = 365 }
include_screen = true
"#;

    #[test]
    fn accepts_the_documented_example() {
        let r = parse_rule(Path::new("r.toml"), EXAMPLE, None, false).unwrap();
        assert_eq!(r.tasks.len(), 2);
        assert_eq!(r.tasks[0].filter.min_age, Some(365));
        assert!(r.tasks[0].zip && r.tasks[1].include_screen);
    }

    #[test]
    fn gir_aliases() {
        let t = "name = \"g\"\nschedule = \"0 0 22 * * *\"\n[[tasks]]\ntype = \"backup\"\n\
                 filter = { filterType = \"screen\", minAge = 1, maxAge = 2, callType = \"Inbound\" }\n\
                 executeOnScreenRecording = true\nuseFullPathInMediaFileBackup = true\nlocation = \"file:///tmp/x\"\n";
        let r = parse_rule(Path::new("g.toml"), t, None, false).unwrap();
        let task = &r.tasks[0];
        assert_eq!(task.filter.recording_type, Kind::Screen);
        assert_eq!((task.filter.min_age, task.filter.max_age), (Some(1), Some(2)));
        assert!(task.include_screen && task.use_full_path);
    }

    #[test]
    fn problems_carry_lines() {
        let bad = EXAMPLE.replace(
            "min_age = 365 }\ninclude_screen = true\nlocation",
            "min_age = 3, max_age = 2 }\nincl = 1\nlocation",
        );
        let p = parse_rule(Path::new("b.toml"), &bad, None, false).unwrap_err();
        assert!(p[0].line == Some(7) && p[0].message.contains("incl"), "{p:?}");
        let cron = EXAMPLE.replace("0 0 2 * * *", "0 0 25 * * *");
        let p = parse_rule(Path::new("c.toml"), &cron, None, false).unwrap_err();
        assert_eq!(p[0].line, Some(3), "{p:?}");
        let ages = EXAMPLE.replace(
            "min_age = 365 }\ninclude_screen = true\nlocation",
            "min_age = 3, max_age = 2 }\ninclude_screen = true\nlocation",
        );
        let p = parse_rule(Path::new("d.toml"), &ages, None, false).unwrap_err();
        assert!(p.iter().any(|p| p.line == Some(6) && p.message.contains("min_age")), "{p:?}");
        let ftp = EXAMPLE.replace("file:///tmp/reclife-rules-test", "ftp://bucket/x");
        let p = parse_rule(Path::new("e.toml"), &ftp, None, false).unwrap_err();
        assert!(p[0].line == Some(8) && p[0].message.contains("unknown scheme"), "{p:?}");
        let s3 = EXAMPLE.replace("file:///tmp/reclife-rules-test", "s3://bucket/x");
        assert!(parse_rule(Path::new("f.toml"), &s3, None, false).is_ok(), "s3:// backup locations are valid");
    }

    #[test]
    fn ages_map_to_start_times() {
        let now = DateTime::parse_from_rfc3339("2025-06-25T03:00:00Z").unwrap().with_timezone(&Utc);
        let f = Filter { min_age: Some(1), max_age: Some(2), ..Filter::default() };
        let q = f.query(now, Some("us"), 24);
        assert_eq!(q.start_to, Some(now - Duration::days(1)));
        // Ages past chrono's range saturate instead of panicking.
        let huge = Filter { min_age: Some(u32::MAX), max_age: Some(u32::MAX), ..Filter::default() };
        let hq = huge.query(now, None, 24);
        assert_eq!(hq.start_to, Some(DateTime::<Utc>::MIN_UTC));
        assert_eq!(q.start_from, Some(now - Duration::days(2)));
        assert_eq!(q.region.as_deref(), Some("us"));
    }
}
