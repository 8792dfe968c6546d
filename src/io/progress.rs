//! Progress reporting from long operations, without tying the library to a terminal.

/// Receives progress from long operations (hashing, copying, sweeping).
/// Implementations must be cheap and thread-safe: `advance` is called from
/// worker threads.
pub trait Progress: Sync {
    /// A phase begins; `total` is its amount of work in bytes (0 if unknown).
    fn begin(&self, _phase: &str, _total: u64) {}
    /// `bytes` more of the current phase are done.
    fn advance(&self, _bytes: u64) {}
    /// The current phase is over.
    fn finish(&self) {}
    /// The operation is blocked, waiting for `what` (a lock another
    /// process holds, say); called before the wait begins.
    fn waiting(&self, _what: &str) {}
    /// Where the current phase stands, in words (`3/12 blobs, 2 there`),
    /// shown beside the bytes.
    fn status(&self, _text: &str) {}
}

/// A [`Progress`] that ignores everything.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl Progress for NoProgress {}
