#![doc = include_str!("../README.md")]
//!
//! # The library
//!
//! epoch-store keeps VM snapshots, OS disk images and container images in a
//! local [OCI image layout] (`oci-layout`, `index.json`, `blobs/sha256/<hex>`),
//! the directory format skopeo, oras, umoci, crane and regctl read, so that
//! they can be carried across an air gap and verified on the other side.
//!
//! # API layout
//!
//! The modules are layers, lowest first; each uses only the ones before it
//! (`.ci/layers.py` checks this in CI, `docs/architecture.md` explains it):
//!
//! | layer | owns |
//! |---|---|
//! | [`io`] | digests, hashing (mmap windows, rayon), in-kernel copies, sparse extents, the publish protocol's primitives, filesystem limits |
//! | [`model`] | media types, annotations, descriptors, documents, artifact kinds, ref names |
//! | [`store`] | [`Layout`], the [`Writer`] (publish protocol, locks), verified reads, [`Index`], the reference graph, gc, verify, disk usage |
//! | [`chunks`] | files stored as chunk blobs and restored from them, holes kept |
//! | `tar` | the one tar member loop every tar reader uses |
//! | [`formats`] | cocoonstack snapshots, their tar stream and OS images; OCI archives; legacy epoch stores |
//! | [`transport`] | layout-to-layout copy onto removable media |
//!
//! The main types, re-exported here:
//! - [`Layout`]: opens or creates a layout; resolves refs; verified reads
//!   ([`Layout::read_blob`], [`Layout::open_blob`]); [`Layout::verify`] and
//!   [`Layout::gc`].
//! - [`Writer`]: a write session (holds the writer lock) that publishes
//!   blobs with the atomic-rename protocol and updates `index.json` under an
//!   exclusive lock, blobs durable first.
//! - [`Index`]: `index.json`, kept raw so other tools' entries survive.
//! - [`Digest`]: validated before it ever becomes a path.
//! - [`Error`]: the one error type.

//! ```
//! use epoch_store::{Layout, NoProgress, VerifyOptions, GcOptions};
//! let dir = tempfile::tempdir()?;
//! let layout = Layout::init(dir.path())?;
//! {
//!     let w = layout.writer()?;
//!     let disk = w.put_bytes("application/vnd.cocoonstack.disk.raw", &[0u8; 4096])?;
//!     let m = epoch_store::store::artifact::files_manifest(&w, &[disk], None, None)?;
//!     w.update_index(|idx| Ok(idx.set_ref(&"vm:v1".parse()?, &m)))?;
//! }
//! assert!(layout.verify(&VerifyOptions::default(), &NoProgress)?.is_ok());
//! let report = layout.gc(&GcOptions::default())?;
//! assert_eq!(report.removed_blobs, 0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! [OCI image layout]: https://github.com/opencontainers/image-spec/blob/main/image-layout.md
#![deny(unsafe_code)]
#![deny(missing_docs)]
#![deny(missing_debug_implementations)]

pub mod chunks;
mod error;
pub mod formats;
pub mod io;
pub mod model;
pub mod store;
mod tar;
pub mod transport;

pub use error::{Error, ErrorKind, Result};
pub use io::digest::{Algorithm, Digest, Hasher};
pub use io::progress::{NoProgress, Progress};
pub use model::Descriptor;
pub use model::name::{MAX_REF_LEN, RefName, split_tag, validate_ref};
pub use store::gc::{Garbage, GcOptions, GcPlan, GcReport};
pub use store::index::Index;
pub use store::layout::{
    DOCUMENT_LIMIT, INDEX_LIMIT, InitOptions, LAYOUT_VERSION, Layout, PRIVATE_DIR,
    looks_like_digest,
};
pub use store::reader::BlobReader;
pub use store::summary::Summary;
pub use store::verify::{Finding, FindingKind, VerifyOptions, VerifyReport};
pub use store::writer::{BlobWriter, Writer};
