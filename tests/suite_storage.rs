//! Test suite `suite_storage`: media stores: the conformance suite, the S3 and WebDAV backends, crashes, round trips.
//!
//! One test binary per area (each binary links the whole crate, so the suite links a few times,
//! not once per file); every file below is a module of its own, as it was a binary of its own.
//! Modules that crash or pause the binary at failpoints need `--features failpoints`.

// Each file declares the support modules it uses, as it did when it was a binary of its own, so a
// support module shared by two files of a suite is compiled twice (its items are plain helpers).
#![allow(clippy::duplicate_mod)]

#[path = "storage_backends.rs"]
mod storage_backends;
#[path = "storage_conformance.rs"]
mod storage_conformance;
#[cfg(feature = "failpoints")]
#[path = "storage_crash.rs"]
mod storage_crash;
#[path = "storage_roundtrip.rs"]
mod storage_roundtrip;
