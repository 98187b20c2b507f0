//! reclife: the lifecycle of contact-center call and screen recordings.
//!
//! The parts, in the order data flows through them:
//!
//! - [`model`]: recording metadata as GIR writes it: the one vocabulary.
//! - [`catalog`]: where metadata lives and how it is scanned (scroll cursors).
//! - [`storage`]: where media lives (local disk, S3 and WebDAV behind one trait).
//! - [`archive`]: the GIR backup layout, shared by backup, ingest and restore.
//! - [`ingest`]: folders and archives in; one recording out.
//! - [`crypto`]: CMS envelopes and keys.
//! - [`media`]: decode voice, lay it on the screen video's timeline, encode, mux (one MP4 out).
//! - [`muxer`]: pairs calls with screen recordings and muxes them, sharded and idempotent.
//! - [`download`]: the cloud backup downloader (GIR's RCBS): metadata from the API, media from S3.
//! - [`import`]: sources that bring recordings in from other systems (Genesys Cloud).
//! - [`playback`]: the playback audit log; encrypted media opened in memory to be played.
//! - [`config`]: node configuration, the clock, the [`config::Context`] commands run in.
//! - [`lifecycle`]: rules, plans, backup, purge, the schedule and on-demand jobs (GIR MLM).
//! - [`progress`]: progress reporting shared by the CLI and the API.
//! - [`api`]: the HTTP faces (RWS-compatible recordings, jobs and rules, metrics), over these calls.
//! - [`web`]: the operators' pages, served by the API's router from the same calls.
//!
//! The binary (`src/main.rs`, `src/cli/`) is a thin face over these calls.

pub mod api;
pub mod archive;
pub mod catalog;
pub mod config;
pub mod crypto;
pub mod download;
pub mod import;
pub mod ingest;
pub mod lifecycle;
pub mod media;
pub mod model;
pub mod muxer;
pub mod playback;
pub mod progress;
pub mod storage;
pub mod web;
