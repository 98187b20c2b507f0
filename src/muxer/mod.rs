//! The recording muxer: GIR's Recording Muxer Script, in process and in parallel.
//!
//! In: the catalog's call recordings that ended in a window (GIR `window_past` …
//! `window_past_older_than` minutes ago, or `--since`/`--until`), their screen recordings,
//! and the media of both. Out: for each (call, screen) pair, a muxed MP4 stored beside the
//! screen recording's media, sealed when a source was encrypted (or `encrypt_always`), added
//! to the screen recording's `mediaFiles` with `parameters.muxed_mediaIds`, and the call
//! labelled `screenRecording`.
//!
//! Guarantees: a pair is muxed at most once, whatever the overlap of windows and however
//! many processes share the catalog: each pair is claimed with a catalog lease and re-read
//! under the claim, and the muxed file on the screen recording is the durable marker. A bad
//! pair (truncated or undecodable media, missing media, no key) is recorded as failed with
//! its reason, retried on later passes up to `max_retries` times, and never stops the others.
//! Sharding follows GIR (`muxer_id`, `total_muxers`, `muxer_type`) over a fixed hash; see
//! [`shard`].

mod config;
pub mod gir_config;
pub mod pairing;
mod process;
mod run;
pub mod scan;
pub mod shard;
pub mod state;
pub mod window;

pub use config::{MuxerConfig, MuxerType};
pub use process::{output_media_id, SCREEN_LABEL};
pub use run::{status, Failed, Muxed, Muxer, PassReport, Status};
pub use window::Window;

/// Errors that stop a pass (a bad pair does not: it is recorded as failed).
#[derive(Debug, thiserror::Error)]
pub enum MuxerError {
    #[error("muxer configuration: {0}")]
    Config(String),
    #[error(transparent)]
    Catalog(#[from] crate::catalog::CatalogError),
    #[error("muxer worker: {0}")]
    Task(String),
    /// Internal: the pair has used up its attempts.
    #[error("pair given up")]
    GivenUp,
}
