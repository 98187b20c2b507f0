//! Test suite `suite_media`: the muxer: media muxing, the CLI, sharding, and playback of its output in Chromium.
//!
//! One test binary per area (each binary links the whole crate, so the suite links a few times,
//! not once per file); every file below is a module of its own, as it was a binary of its own.
//! Modules that crash or pause the binary at failpoints need `--features failpoints`.

// Each file declares the support modules it uses, as it did when it was a binary of its own, so a
// support module shared by two files of a suite is compiled twice (its items are plain helpers).
#![allow(clippy::duplicate_mod)]

#[path = "media_mux.rs"]
mod media_mux;
#[path = "muxer_browser.rs"]
mod muxer_browser;
#[path = "muxer_cli.rs"]
mod muxer_cli;
#[path = "muxer_sharding.rs"]
mod muxer_sharding;
