//! Test suite `suite_lifecycle`: rules, plans, backups, purges, the schedule, crashes and the guarantees between them; ingest through the CLI.
//!
//! One test binary per area (each binary links the whole crate, so the suite links a few times,
//! not once per file); every file below is a module of its own, as it was a binary of its own.
//! Modules that crash or pause the binary at failpoints need `--features failpoints`.

// Each file declares the support modules it uses, as it did when it was a binary of its own, so a
// support module shared by two files of a suite is compiled twice (its items are plain helpers).
#![allow(clippy::duplicate_mod)]

#[path = "ingest_cli.rs"]
mod ingest_cli;
#[path = "lifecycle_backup.rs"]
mod lifecycle_backup;
#[cfg(feature = "failpoints")]
#[path = "lifecycle_crash.rs"]
mod lifecycle_crash;
#[cfg(feature = "failpoints")]
#[path = "lifecycle_guarantees.rs"]
mod lifecycle_guarantees;
#[cfg(feature = "failpoints")]
#[path = "lifecycle_mux_purge.rs"]
mod lifecycle_mux_purge;
#[path = "lifecycle_purge.rs"]
mod lifecycle_purge;
#[path = "lifecycle_rules.rs"]
mod lifecycle_rules;
#[path = "lifecycle_schedule.rs"]
mod lifecycle_schedule;
