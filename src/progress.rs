//! Progress reporting: the library reports through [`Progress`]; the CLI draws it with
//! indicatif, the API serves it as JSON, tests ignore it.

/// A sink for progress of one long operation.
pub trait Progress: Send + Sync {
    /// The true total, once known.
    fn set_total(&self, _total: u64) {}
    /// `n` more items done.
    fn inc(&self, _n: u64) {}
    /// A short note on what is happening now.
    fn message(&self, _msg: &str) {}
    fn finish(&self) {}
}

/// Progress nobody watches.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl Progress for NoProgress {}
