//! Layer 5, tar: the crate's member loop over tar headers, shared by every
//! format that reads a tar stream (the cocoon snapshot stream, OCI archives).

pub(crate) mod read;
