//! The one check of a job's tasks, whatever made them: a rule file, a job posted to the API, the
//! operators' plan form, or `reclife backup` / `reclife purge` flags.
//!
//! In: the tasks in order, and what the node knows of backup locations. Out: nothing, or every
//! [`TaskProblem`] found, each naming its task (1-based) and the part of the task it is about
//! (so a rule file can point at a line). The rules:
//! - ages are at most [`MAX_AGE_DAYS`]; `min_age < max_age` when both are set; `call_type` is
//!   one of GIR's ([`CALL_TYPES`]);
//! - a purge of every age (`min_age` unset or 0) needs the explicit confirmation `all_ages`
//!   (`--all-ages --yes` on the command line, `"all_ages": true` in a posted job or a rule
//!   file's task); `all_ages` with a `min_age` above 0, or on a backup, is a contradiction;
//! - a job has at most one purge, and it is the last task;
//! - a purge after a backup has the backup's filter and `include_screen` (it deletes exactly
//!   what that backup archived, and the plan shows exactly that), and that backup does not
//!   write into a folder every local user can write;
//! - an import task names a source configured on the node (when the caller knows the node's
//!   sources) and takes nothing else; other tasks take no source;
//! - an import task names a source configured on the node (when the caller knows the node's
//!   sources) and takes nothing else; other tasks take no source;
//! - a purge takes no location, zip or full-path setting; a backup has a location (its own or
//!   the node's default), not the shipped placeholder, and a usable one.
//!
//! [`check_tasks`] is called when a plan is made and again when a planned job is started
//! ([`super::runner`]), so no face and no stored plan can skip it.

use super::rules::{check_location, local_dir, world_writable, MAX_AGE_DAYS, PLACEHOLDER};
use super::{Op, Task};

/// The part of a task a problem is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The task as a whole (its type, its place in the job).
    Task,
    /// Its filter (ages, type, attached data).
    Filter,
    /// Its backup location.
    Location,
}

/// One problem of one task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskProblem {
    /// 1-based position of the task.
    pub task: usize,
    pub part: Part,
    pub message: String,
}

impl std::fmt::Display for TaskProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "task {}: {}", self.task, self.message)
    }
}

/// What the check needs from the node.
#[derive(Debug, Clone, Copy, Default)]
pub struct Checking<'a> {
    /// The node's `default_backup_location`.
    pub default_location: Option<&'a str>,
    /// Probe backup locations now (a folder must be writable); a run reports an unwritable
    /// location as a task failure instead.
    pub probe_locations: bool,
    /// The node's configured import sources (`[import.<name>]`); `None` when the caller does not
    /// know them (a rule file read without the node's configuration): then only the presence of
    /// an import task's source is checked.
    pub sources: Option<&'a [String]>,
}

/// The problem of a purge given a backup's settings (a rule file's or a posted job's `zip` too,
/// which [`Task`] cannot tell from its default).
pub const BACKUP_ONLY: &str = "location, zip and use_full_path apply to backup tasks only";

/// The problem of an import task given a backup's or a purge's settings.
pub const NOT_FOR_IMPORT: &str =
    "an import task takes only its source (and on_failure): filter, include_screen, location, zip, use_full_path and all_ages do not apply";

/// GIR's `callType` values (compared without case).
pub const CALL_TYPES: &[&str] = &["Unknown", "Inbound", "Outbound", "Internal", "Consult"];

/// How to say "every age" on each face; one sentence for every message that needs it.
pub const ALL_AGES_HINT: &str =
    "to purge every age say so explicitly: --all-ages --yes on the command line, \"all_ages\": true in a posted job or a rule's task";

/// Checks the tasks of one job (or rule). Returns every problem, in task order.
pub fn check_tasks(tasks: &[Task], how: Checking<'_>) -> Result<(), Vec<TaskProblem>> {
    let mut out = Vec::new();
    let mut problem = |task: usize, part: Part, message: String| out.push(TaskProblem { task, part, message });
    let n = tasks.len();
    let mut purges = 0;
    for (i, t) in tasks.iter().enumerate() {
        let num = i + 1;
        let f = &t.filter;
        for (what, v) in [("min_age", f.min_age), ("max_age", f.max_age)] {
            if let Some(d) = v.filter(|d| *d > MAX_AGE_DAYS) {
                problem(num, Part::Filter, format!("{what} ({d}) is more than {MAX_AGE_DAYS} days"));
            }
        }
        if let (Some(min), Some(max)) = (f.min_age, f.max_age) {
            if min >= max {
                problem(num, Part::Filter, format!("min_age ({min}) must be less than max_age ({max})"));
            }
        }
        if let Some(c) = &f.call_type {
            if !CALL_TYPES.iter().any(|t| t.eq_ignore_ascii_case(c)) {
                problem(num, Part::Filter, format!("call_type {c:?} is not one of GIR's: {}", CALL_TYPES.join(", ")));
            }
        }
        for (k, v) in &f.attached_data {
            if f.attached_data_not.get(k) == Some(v) {
                problem(
                    num,
                    Part::Filter,
                    format!("attached data {k} = {v:?} is both required and excluded: the task selects nothing"),
                );
            }
        }
        if t.op != Op::Import && t.source.is_some() {
            problem(num, Part::Task, "source applies to import tasks only".into());
        }
        match t.op {
            Op::Import => {
                if t.location.is_some() || t.use_full_path || t.all_ages || t.include_screen {
                    problem(num, Part::Task, NOT_FOR_IMPORT.into());
                }
                match t.source.as_deref().map(str::trim) {
                    None | Some("") => problem(
                        num,
                        Part::Task,
                        "an import task names its source: source = \"NAME\" of an [import.NAME] table".into(),
                    ),
                    Some(s) => {
                        if let Some(known) = how.sources.filter(|k| !k.iter().any(|x| x == s)) {
                            problem(
                                num,
                                Part::Task,
                                format!(
                                    "import source {s:?} is not configured (configured: {})",
                                    if known.is_empty() { "none".to_string() } else { known.join(", ") }
                                ),
                            );
                        }
                    }
                }
            }
            Op::Purge => {
                purges += 1;
                let every_age = f.min_age.is_none_or(|d| d == 0);
                if every_age && !t.all_ages {
                    let given = if f.min_age.is_some() { "min_age = 0 selects" } else { "without min_age it selects" };
                    problem(
                        num,
                        Part::Filter,
                        format!(
                            "a purge needs min_age of 1 day or more ({given} every {} recording, the newest too); {ALL_AGES_HINT}",
                            f.recording_type
                        ),
                    );
                }
                if t.all_ages && !every_age {
                    problem(
                        num,
                        Part::Filter,
                        format!("all_ages contradicts min_age = {}: give one or the other", f.min_age.unwrap_or(0)),
                    );
                }
                if purges == 2 {
                    problem(num, Part::Task, "a job may have only one purge task".into());
                }
                if num != n {
                    problem(num, Part::Task, "the purge task must be the last task".into());
                }
                if let Some(b) = tasks[..i].iter().rev().find(|b| b.op == Op::Backup) {
                    if b.filter != t.filter || b.include_screen != t.include_screen {
                        problem(
                            num,
                            Part::Filter,
                            "the purge's filter and include_screen must equal those of the backup before it \
                             (it deletes what that backup archived, and its plan must show exactly that)"
                                .into(),
                        );
                    }
                    // The archive must sit where other local users cannot replace or unlink it.
                    if let Some(dir) = b.location.as_deref().or(how.default_location).and_then(local_dir) {
                        if world_writable(&dir) {
                            problem(
                                num,
                                Part::Task,
                                format!(
                                    "the backup before this purge writes to {}, which every local user can write; \
                                     a purge never follows a backup there (choose a private folder)",
                                    dir.display()
                                ),
                            );
                        }
                    }
                }
                if t.location.is_some() || t.use_full_path {
                    problem(num, Part::Task, BACKUP_ONLY.into());
                }
            }
            Op::Backup => {
                if t.all_ages {
                    problem(num, Part::Filter, "all_ages applies to purge tasks only".into());
                }
                match t.location.as_deref().or(how.default_location) {
                    None => problem(num, Part::Task, "no location, and the node has no default_backup_location".into()),
                    Some(uri) if uri.starts_with(PLACEHOLDER) => problem(
                        num,
                        Part::Location,
                        format!("location {uri} is the shipped placeholder: set the folder backups go to"),
                    ),
                    Some(uri) => {
                        if let Err(why) = check_location(uri, how.probe_locations) {
                            problem(num, Part::Location, format!("location {uri}: {why}"));
                        }
                    }
                }
            }
        }
    }
    if tasks.is_empty() {
        out.push(TaskProblem { task: 0, part: Part::Task, message: "there are no tasks".into() });
    }
    if out.is_empty() {
        Ok(())
    } else {
        Err(out)
    }
}

/// The problems as one message, one per line.
pub fn describe(problems: &[TaskProblem]) -> String {
    problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lifecycle::{Filter, OnFailure};

    fn task(op: Op, min: Option<u32>, max: Option<u32>) -> Task {
        Task {
            op,
            filter: Filter { min_age: min, max_age: max, ..Filter::default() },
            include_screen: false,
            on_failure: OnFailure::Stop,
            location: (op == Op::Backup).then(|| "file:///nonexistent-reclife-test".into()),
            zip: true,
            use_full_path: false,
            source: None,
            all_ages: false,
        }
    }

    fn messages(tasks: &[Task]) -> Vec<String> {
        check_tasks(tasks, Checking::default()).err().unwrap_or_default().iter().map(|p| p.to_string()).collect()
    }

    #[test]
    fn a_purge_after_a_backup_has_its_filter() {
        let m = messages(&[task(Op::Backup, Some(30), None), task(Op::Purge, Some(365), None)]);
        assert!(m.iter().any(|m| m.contains("task 2") && m.contains("must equal")), "{m:?}");
        assert!(messages(&[task(Op::Backup, Some(30), None), task(Op::Purge, Some(30), None)]).is_empty());
    }

    #[test]
    fn a_purge_is_last_and_alone() {
        let m = messages(&[task(Op::Purge, Some(30), None), task(Op::Backup, Some(30), None)]);
        assert!(m.iter().any(|m| m.contains("task 1") && m.contains("last")), "{m:?}");
        let m = messages(&[task(Op::Purge, Some(30), None), task(Op::Purge, Some(30), None)]);
        assert!(m.iter().any(|m| m.contains("task 2") && m.contains("only one purge")), "{m:?}");
    }

    #[test]
    fn an_import_task_names_a_configured_source_and_nothing_else() {
        let mut imp = task(Op::Import, None, None);
        imp.location = None;
        let m = messages(&[imp.clone()]);
        assert!(m.len() == 1 && m[0].contains("names its source"), "{m:?}");
        imp.source = Some("gc".into());
        assert!(messages(&[imp.clone()]).is_empty(), "without the node's sources, any name passes");
        let known = ["gc".to_string()];
        let how = |k: &'static [String]| Checking { sources: Some(k), ..Checking::default() };
        assert!(check_tasks(&[imp.clone()], Checking { sources: Some(&known), ..Checking::default() }).is_ok());
        let e = check_tasks(&[imp.clone()], how(&[])).unwrap_err();
        assert!(e[0].to_string().contains("\"gc\" is not configured (configured: none)"), "{e:?}");
        let mut wrong = imp.clone();
        wrong.include_screen = true;
        assert!(messages(&[wrong])[0].contains(NOT_FOR_IMPORT));
        let mut backup = task(Op::Backup, Some(30), None);
        backup.source = Some("gc".into());
        assert!(messages(&[backup])[0].contains("source applies to import tasks only"));
        // An import before a purge leaves the purge's rules as they are.
        assert!(messages(&[imp, task(Op::Purge, Some(30), None)]).is_empty());
    }

    #[test]
    fn every_age_needs_the_confirmation() {
        for min in [None, Some(0)] {
            let m = messages(&[task(Op::Purge, min, None)]);
            assert!(m.iter().any(|m| m.contains("--all-ages --yes")), "{min:?}: {m:?}");
            let mut t = task(Op::Purge, min, None);
            t.all_ages = true;
            assert!(messages(&[t]).is_empty(), "{min:?}");
        }
        let mut t = task(Op::Purge, Some(3), None);
        t.all_ages = true;
        assert!(messages(&[t]).iter().any(|m| m.contains("contradicts")));
    }

    #[test]
    fn call_types_are_girs() {
        let mut t = task(Op::Purge, Some(30), None);
        t.filter.call_type = Some("outbound".into());
        assert!(messages(std::slice::from_ref(&t)).is_empty());
        t.filter.call_type = Some("outgoing".into());
        assert!(messages(&[t]).iter().any(|m| m.contains("not one of GIR's")));
    }

    #[test]
    fn ages_are_bounded_and_ordered() {
        let m = messages(&[task(Op::Purge, Some(MAX_AGE_DAYS + 1), None)]);
        assert!(m.iter().any(|m| m.contains("more than")), "{m:?}");
        let m = messages(&[task(Op::Purge, Some(5), Some(5))]);
        assert!(m.iter().any(|m| m.contains("less than")), "{m:?}");
        assert!(!messages(&[]).is_empty());
    }
}
