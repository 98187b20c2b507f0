//! The one registry of catalog state namespaces (and of lease names): every namespace any
//! module keeps state in is declared here, once, with what it holds and whether it outlives
//! the processes that write it.
//!
//! Readers of the registry: `reclife catalog migrate` ([`super::copy`]) carries over exactly
//! the [`Kind::Durable`] namespaces and refuses to start while a [`Kind::InFlight`] one holds
//! entries, or while the source holds state in a namespace the registry does not know;
//! `reclife check` reports such unknown namespaces; ARCHITECTURE.md lists the same table (a
//! unit test keeps them equal, and another that no module names a namespace outside this file).
//! A module declares its namespace as `pub const NAMESPACE: &str = namespaces::X;`.

/// What becomes of a namespace's entries when the catalog is copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Outlives the processes that write it: carried over by `reclife catalog migrate`.
    Durable,
    /// Work in flight: a catalog is copied only once it holds none; the text says what to do.
    InFlight(&'static str),
    /// Marks of live processes, or of this catalog alone: never carried over.
    Local,
}

/// One namespace: its name, the module that owns it, what its entries are, its [`Kind`].
#[derive(Debug, Clone, Copy)]
pub struct Namespace {
    pub name: &'static str,
    pub owner: &'static str,
    pub what: &'static str,
    pub kind: Kind,
}

pub const JOBS: &str = "lifecycle.jobs";
pub const RUNNING_JOBS: &str = "lifecycle.running-jobs";
pub const LAST_RUN: &str = "lifecycle.last-run";
pub const SCHEDULER_TICKS: &str = "lifecycle.scheduler-ticks";
pub const FIRES: &str = "lifecycle.fires";
pub const PURGE_JOURNAL: &str = "lifecycle.purge-journal";
pub const AUDIT_LOGS: &str = "lifecycle.audit-logs";
pub const FOOTPRINTS: &str = "lifecycle.footprints";
pub const OUTBOX: &str = "lifecycle.outbox";
pub const CANCEL: &str = "lifecycle.cancel";
pub const REMOTE_FOLDERS: &str = "lifecycle.remote-folders";
pub const RULE_OVERRIDES: &str = "rules.enabled";
pub const RULES: &str = "rules.catalog";
pub const RULE_VERSIONS: &str = "rules.versions";
pub const IN_PLACE: &str = "media.in-place";
pub const MUXER_PAIRS: &str = "muxer.pairs";
pub const MIGRATE_PROGRESS: &str = "catalog.migrate";
pub const PROBE: &str = "api.probe";
pub const IMPORT_CURSOR: &str = "import.cursor";
pub const IMPORT_RETRY: &str = "import.retry";
pub const IMPORT_LAST_BATCH: &str = "import.last-batch";
pub const IMPORT_ALERTS: &str = "import.alerts";
pub const IMPORT_DELETIONS: &str = "import.deletions";
pub const IMPORT_COUNTERS: &str = "import.counters";

/// Every namespace.
pub const ALL: &[Namespace] = &[
    Namespace {
        name: JOBS,
        owner: "lifecycle::jobs",
        what: "job records (plans, states, reports)",
        kind: Kind::Durable,
    },
    Namespace {
        name: RUNNING_JOBS,
        owner: "lifecycle::jobs",
        what: "jobs marked running (their process holds lease lifecycle/job/<id>)",
        kind: Kind::InFlight("a job is running: stop every node first, then `reclife check --repair`"),
    },
    Namespace { name: LAST_RUN, owner: "lifecycle::schedule", what: "each rule's last run", kind: Kind::Durable },
    Namespace {
        name: SCHEDULER_TICKS,
        owner: "lifecycle::schedule",
        what: "each running scheduler's last tick (the health page)",
        kind: Kind::Local,
    },
    Namespace {
        name: FIRES,
        owner: "lifecycle::schedule",
        what: "fire marks: each rule's fire claimed, its job, done",
        kind: Kind::Durable,
    },
    Namespace {
        name: PURGE_JOURNAL,
        owner: "lifecycle::journal",
        what: "open purge batches (each recording with the version it may be deleted at)",
        kind: Kind::InFlight("an interrupted purge: run `reclife check --repair` (or any rule) to finish it"),
    },
    Namespace {
        name: AUDIT_LOGS,
        owner: "lifecycle::journal",
        what: "audit logs a purge batch may already be audited to (no batch is audited twice)",
        kind: Kind::Durable,
    },
    Namespace {
        name: FOOTPRINTS,
        owner: "lifecycle::guard",
        what: "running tasks' filters (the overlap guard)",
        kind: Kind::Local,
    },
    Namespace {
        name: OUTBOX,
        owner: "lifecycle::outbox",
        what: "purge notifications not yet delivered",
        kind: Kind::Durable,
    },
    Namespace { name: CANCEL, owner: "lifecycle::runner", what: "cancel requests of running jobs", kind: Kind::Local },
    Namespace {
        name: REMOTE_FOLDERS,
        owner: "lifecycle::remote_dir",
        what: "claims of folder backups being written to S3/WebDAV (a dead one's partial folder is removed by repair)",
        kind: Kind::Durable,
    },
    Namespace {
        name: RULE_OVERRIDES,
        owner: "lifecycle::rules",
        what: "operators' rule enable/disable overrides",
        kind: Kind::Durable,
    },
    Namespace {
        name: RULES,
        owner: "lifecycle::rule_store",
        what: "the rules every node shares: each rule's latest version (or its tombstone)",
        kind: Kind::Durable,
    },
    Namespace {
        name: RULE_VERSIONS,
        owner: "lifecycle::rule_store",
        what: "every version of every rule (text, who, when, from where), tombstones included",
        kind: Kind::Durable,
    },
    Namespace {
        name: IN_PLACE,
        owner: "ingest::in_place",
        what: "media registered in place: per recording, mediaId → location",
        kind: Kind::Durable,
    },
    Namespace {
        name: MUXER_PAIRS,
        owner: "muxer::state",
        what: "muxer pair records (muxed / failed, reason, attempts, sources)",
        kind: Kind::Durable,
    },
    Namespace {
        name: MIGRATE_PROGRESS,
        owner: "catalog::copy",
        what: "progress of a copy into this catalog (resumes an interrupted `catalog migrate`)",
        kind: Kind::Local,
    },
    Namespace {
        name: PROBE,
        owner: "api, web",
        what: "never written: health probes read a key of it to see that the catalog answers",
        kind: Kind::Local,
    },
    Namespace {
        name: IMPORT_CURSOR,
        owner: "import::state",
        what: "each import source's cursor (conversation id; time)",
        kind: Kind::Durable,
    },
    Namespace {
        name: IMPORT_RETRY,
        owner: "import::state",
        what: "each import source's retry buffer (conversations to try again)",
        kind: Kind::Durable,
    },
    Namespace {
        name: IMPORT_LAST_BATCH,
        owner: "import::state",
        what: "each import source's last batch report",
        kind: Kind::Durable,
    },
    Namespace { name: IMPORT_ALERTS, owner: "import::state", what: "each import source's alerts", kind: Kind::Durable },
    Namespace {
        name: IMPORT_COUNTERS,
        owner: "import::state",
        what: "each import source's running totals (imported, failed, alerts by kind) for /metrics",
        kind: Kind::Durable,
    },
    Namespace {
        name: IMPORT_DELETIONS,
        owner: "import::state",
        what: "cloud deletions noted before a document was written, not yet confirmed",
        kind: Kind::Durable,
    },
];

/// The registry's entry for `name`.
pub fn find(name: &str) -> Option<&'static Namespace> {
    ALL.iter().find(|n| n.name == name)
}

/// The namespaces `reclife catalog migrate` carries over.
pub fn durable() -> Vec<&'static str> {
    ALL.iter().filter(|n| n.kind == Kind::Durable).map(|n| n.name).collect()
}

/// The namespaces that must be empty before a copy, with what to do about it.
pub fn in_flight() -> Vec<(&'static str, &'static str)> {
    ALL.iter()
        .filter_map(|n| match n.kind {
            Kind::InFlight(what) => Some((n.name, what)),
            _ => None,
        })
        .collect()
}

/// Lease names (or their prefixes, ending in `/`): leases are never copied, they belong to
/// live processes.
pub const LEASES: &[(&str, &str)] = &[
    ("lifecycle/job/", "a running job (lifecycle::jobs)"),
    ("lifecycle/fire/", "a rule's fire being run (lifecycle::schedule)"),
    ("lifecycle/footprint/", "a running task's footprint (lifecycle::guard)"),
    ("lifecycle/journal/", "a purge batch being executed (lifecycle::journal)"),
    ("lifecycle/guard", "the overlap guard's short lock (lifecycle::guard)"),
    ("muxer/pair/", "a pair being muxed (muxer::state)"),
    (INTENT_LEASE, "a writer storing a recording's media (ingest::intent)"),
    ("import/", "an import source being run (import)"),
    ("rules/write", "a write of the shared rules (lifecycle::rule_store)"),
];

/// Prefix of the leases of writers' intents ([`crate::ingest::intent`]).
pub const INTENT_LEASE: &str = "media/intent/";

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn names_are_unique() {
        let mut names: Vec<&str> = ALL.iter().map(|n| n.name).collect();
        names.sort();
        let n = names.len();
        names.dedup();
        assert_eq!(names.len(), n, "a namespace is declared twice");
    }

    fn sources(dir: &Path, out: &mut Vec<(String, String)>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                sources(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push((p.display().to_string(), std::fs::read_to_string(&p).unwrap()));
            }
        }
    }

    /// A string literal that looks like a namespace (`word.word-word`, lowercase).
    fn namespace_like(lit: &str) -> bool {
        let Some((a, b)) = lit.split_once('.') else { return false };
        !a.is_empty()
            && !b.is_empty()
            && a.chars().all(|c| c.is_ascii_lowercase())
            && b.chars().all(|c| c.is_ascii_lowercase() || c == '-')
            && ["lifecycle", "media", "muxer", "rules", "catalog", "ingest", "api"].contains(&a)
            && !["rs", "db", "toml", "json", "css", "js", "md", "sh", "zip", "mp3", "mp4", "wav"].contains(&b)
    }

    /// No module keeps state outside the registry: no `state_*` call names its namespace with
    /// a literal, no registered name is spelt out anywhere else, and no constant elsewhere
    /// holds a namespace-shaped name.
    #[test]
    fn no_namespace_is_declared_outside_the_registry() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        sources(&root, &mut files);
        let mut bad = Vec::new();
        for (path, text) in &files {
            if path.ends_with("catalog/namespaces.rs") || path.ends_with("catalog/conformance.rs") {
                continue;
            }
            for (i, line) in text.lines().enumerate() {
                let at = format!("{path}:{}", i + 1);
                for call in ["state_get(", "state_put(", "state_delete(", "state_list(", "state_page("] {
                    if let Some(rest) = line.split(call).nth(1) {
                        if rest.trim_start().starts_with('"') {
                            bad.push(format!("{at}: {call} with a literal namespace"));
                        }
                    }
                }
                for lit in line.split('"').skip(1).step_by(2) {
                    if find(lit).is_some() {
                        bad.push(format!("{at}: \"{lit}\" spelt out (use catalog::namespaces)"));
                    } else if namespace_like(lit) && line.contains("const ") && line.contains("&str") {
                        bad.push(format!("{at}: \"{lit}\" looks like a namespace not in the registry"));
                    }
                }
            }
        }
        assert!(bad.is_empty(), "declare namespaces in src/catalog/namespaces.rs:\n{}", bad.join("\n"));
    }

    /// ARCHITECTURE.md's table lists exactly the registry's namespaces, each with its kind,
    /// and the registry's leases.
    #[test]
    fn the_architecture_document_lists_the_registry() {
        let doc = include_str!("../../ARCHITECTURE.md");
        let rows: Vec<Vec<&str>> = doc
            .lines()
            .filter_map(|l| l.strip_prefix("    "))
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .filter(|w| w.first().is_some_and(|n| namespace_like(n) || find(n).is_some()))
            .collect();
        for n in ALL {
            let kind = match n.kind {
                Kind::Durable => "durable",
                Kind::InFlight(_) => "in flight",
                Kind::Local => "local",
            };
            let row = rows.iter().find(|w| w[0] == n.name);
            let row = row.unwrap_or_else(|| panic!("ARCHITECTURE.md's table does not list namespace {}", n.name));
            assert!(row[1..].join(" ").starts_with(kind), "ARCHITECTURE.md: {} is {kind}", n.name);
        }
        for w in &rows {
            assert!(find(w[0]).is_some(), "ARCHITECTURE.md lists {}, which the registry does not hold", w[0]);
        }
        for (l, _) in LEASES {
            assert!(doc.contains(l), "ARCHITECTURE.md does not list lease {l}");
        }
    }
}
