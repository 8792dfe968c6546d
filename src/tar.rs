//! Layer 5, tar: the crate's one tar reader and one tar writer, shared by
//! every format that reads or writes a tar stream (the cocoon snapshot
//! stream, OCI archives): the member loop over tar headers
//! ([`read`](mod@read)), and headers, PAX records, padding and the
//! end-of-archive marker ([`write`](mod@write)), and reproducible filesystem
//! tars for image layers ([`rootfs`]).

pub(crate) mod read;
pub mod rootfs;
pub(crate) mod write;

/// A tar block: headers are one, bodies are padded to whole ones.
pub(crate) const BLOCK: usize = 512;
