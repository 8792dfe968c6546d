//! Layer 4, files as chunk blobs: a file's stored stream (its data extents
//! back to back) cut at fixed offsets and written as blobs in parallel
//! ([`write`](mod@write)); a chunk's bytes read back verified, zstd decoded,
//! exactly its length (`read`); files restored from their chunks, verified,
//! holes kept, and resumable after a kill ([`restore`]).

pub(crate) mod read;
pub mod restore;
pub(crate) mod resume;
pub mod write;
