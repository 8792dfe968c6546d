#![doc = include_str!("../README.md")]
//!
//! # The library
//!
//! epoch-store keeps VM snapshots, OS disk images and container images in a
//! local [OCI image layout] (`oci-layout`, `index.json`, `blobs/sha256/<hex>`),
//! the directory format skopeo, oras, umoci, crane and regctl read, so that
//! they can be carried across an air gap and verified on the other side.
//!
//! The main types:
//! - [`Layout`]: opens or creates a layout; resolves refs; verified reads
//!   ([`Layout::read_blob`], [`Layout::open_blob`]); [`Layout::verify`] and
//!   [`Layout::gc`].
//! - [`Writer`]: a write session (holds the writer lock) that publishes
//!   blobs with the atomic-rename protocol and updates `index.json` under an
//!   exclusive lock, blobs durable first.
//! - [`Index`]: `index.json`, kept raw so other tools' entries survive.
//! - [`Digest`]: validated before it ever becomes a path.
//! - [`model`]: descriptors, manifests, artifact kinds, cocoonstack types.
//! - [`snapshot`], [`os_image`]: cocoonstack VM snapshots and OS disk
//!   images, packed from and unpacked to files.
//!
//! ```
//! use epoch_store::{Layout, NoProgress, VerifyOptions, GcOptions};
//! let dir = tempfile::tempdir()?;
//! let layout = Layout::init(dir.path())?;
//! {
//!     let w = layout.writer()?;
//!     let disk = w.put_bytes("application/vnd.cocoonstack.disk.raw", &[0u8; 4096])?;
//!     let m = epoch_store::artifact::files_manifest(&w, &[disk], None, None)?;
//!     w.update_index(|idx| Ok(idx.set_ref("vm:v1", &m)))?;
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

// An OCI layout as one tar (skopeo's `oci-archive:`): export and import (module docs in the file).
pub mod archive;
pub mod artifact;
pub mod cocoon_tar;
pub mod copy;
mod digest;
// Disk usage per manifest: stored, shared and unique bytes (module docs in the file).
pub mod du;
mod durable;
mod error;
mod gc;
mod graph;
mod hash;
mod index;
mod inventory;
mod layout;
// Legacy epoch stores (catalog.json, manifests/, blobs/) into snapshot artifacts.
pub mod legacy;
mod lock;
pub mod media;
mod mmap;
pub mod model;
// cocoonstack OS disk images: split parts, SHA256SUMS, reassembly (module docs in the file).
pub mod os_image;
pub mod pack;
mod progress;
mod reader;
mod refname;
pub mod size;
pub mod snapshot;
pub mod snapshot_tar;
pub mod sparse;
mod summary;
mod tar_read;
pub mod text;
mod time;
pub mod transfer;
pub mod unpack;
mod verify;
mod writer;

pub use digest::{Algorithm, Digest, Hasher};
pub use error::{Error, Result};
pub use gc::{Garbage, GcOptions, GcPlan, GcReport};
pub use hash::{WINDOW, hash_file, hash_reader};
pub use index::Index;
pub use layout::{DOCUMENT_LIMIT, INDEX_LIMIT, InitOptions, LAYOUT_VERSION, Layout, PRIVATE_DIR};
pub use model::Descriptor;
pub use oci_spec;
pub use progress::{NoProgress, Progress};
pub use reader::BlobReader;
pub use refname::{MAX_REF_LEN, split_tag, validate_ref};
pub use summary::{Listing, Summary};
pub use verify::{Finding, FindingKind, VerifyOptions, VerifyReport};
pub use writer::{BlobWriter, StoredRange, Writer};
