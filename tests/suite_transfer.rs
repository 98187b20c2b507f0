//! Test suite `suite_transfer`: recordings in from elsewhere: the cloud backup downloader and the Genesys Cloud import.
//!
//! One test binary per area (each binary links the whole crate, so the suite links a few times,
//! not once per file); every file below is a module of its own, as it was a binary of its own.
//! Modules that crash or pause the binary at failpoints need `--features failpoints`.

// Each file declares the support modules it uses, as it did when it was a binary of its own, so a
// support module shared by two files of a suite is compiled twice (its items are plain helpers).
#![allow(clippy::duplicate_mod)]

#[path = "download.rs"]
mod download;
#[cfg(feature = "failpoints")]
#[path = "import_genesys.rs"]
mod import_genesys;
