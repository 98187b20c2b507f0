//! Test suite `suite_catalog`: the catalog: the conformance suite on both backends, migration between them, several nodes on one catalog.
//!
//! One test binary per area (each binary links the whole crate, so the suite links a few times,
//! not once per file); every file below is a module of its own, as it was a binary of its own.
//! Modules that crash or pause the binary at failpoints need `--features failpoints`.

// Each file declares the support modules it uses, as it did when it was a binary of its own, so a
// support module shared by two files of a suite is compiled twice (its items are plain helpers).
#![allow(clippy::duplicate_mod)]

#[path = "catalog_conformance.rs"]
mod catalog_conformance;
#[path = "catalog_migrate.rs"]
mod catalog_migrate;
#[cfg(feature = "failpoints")]
#[path = "catalog_multinode.rs"]
mod catalog_multinode;
