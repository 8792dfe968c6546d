//! Layer 1, bytes and files: digests and hashing, memory-mapped windows,
//! in-kernel copies, sparse extents, the publish protocol's primitives,
//! what a filesystem can take, progress, and text made safe to show.
//!
//! Nothing here knows what an OCI layout or a manifest is; every layer
//! above builds on it.

pub mod copy_range;
pub mod counting;
pub(crate) mod digest;
pub(crate) mod durable;
pub mod filesystem;
pub mod gzip;
pub(crate) mod hash;
pub mod input;
pub mod meter;
pub(crate) mod mmap;
pub(crate) mod progress;
pub(crate) mod schedule;
pub mod size;
pub mod sparse;
pub mod text;
pub(crate) mod timestamp;
