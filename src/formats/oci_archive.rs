//! An OCI image layout as one tar stream, what skopeo calls `oci-archive:`:
//! [`export_archive`] writes the refs asked for and every blob they reach,
//! [`import_archive`] stores such a stream (ours, skopeo's, or a plain
//! `tar -C LAYOUT -c .`) in our layout and tags its entries.
//!
//! # The format
//! A tar (ustar, with a PAX header only where a name or size needs one;
//! gzip accepted on input, detected by its magic `1f 8b`) of a layout:
//! `oci-layout`, `index.json` and `blobs/<alg>/<hex>`. What epoch-store
//! writes, in this order, with mode 0644 (directories 0755), owner 0,
//! mtime 0:
//!
//! 1. `oci-layout`: `{"imageLayoutVersion":"1.0.0"}`;
//! 2. `index.json`: exactly the requested refs' entries, as stored (with
//!    their `org.opencontainers.image.ref.name`, so that `skopeo inspect
//!    oci-archive:FILE:REF` finds them; a digest given instead of a ref
//!    gives an untagged entry);
//! 3. the directories `blobs/` and `blobs/<alg>/`;
//! 4. every blob the entries reach, each once, in the order of the graph
//!    walk (documents before what they reference).
//!
//! The same refs over the same blobs therefore always give the same bytes.
//!
//! # Export
//! Every blob is read from the layout and checked against its digest on
//! the way out: blobs of at most [`VERIFY_AHEAD`](crate::formats::cocoon::stream::VERIFY_AHEAD)
//! bytes before any of their bytes is written, larger ones while they
//! stream, their last bytes held back until the digest has checked. A
//! failed export never writes the end-of-archive marker and never stops on
//! a member boundary (a stray byte is added then), so every reader refuses
//! the stream. [`export_archive_file`] writes a temp file beside the
//! destination, fsyncs and renames it: a failed export leaves no file.
//!
//! # Import
//! The stream is read once, front to back. Each `blobs/<alg>/<hex>` member
//! is hashed while it is written to a temp file and published only if it
//! hashes to the digest its name gives; a blob already in the layout (a
//! regular file of the right size) is hashed and not written again.
//! `oci-layout` and `index.json` are read into memory (size-capped)
//! wherever they come in the stream; directories are skipped; everything
//! else (links, devices, FIFOs, absolute paths, `..`, names outside
//! `oci-layout`, `index.json` and `blobs/`, PAX global headers, GNU sparse
//! members, truncated or garbage input, anything after the end-of-archive
//! marker but zeros) is refused. Other names are refused once
//! `oci-layout` has been seen, and at `oci-layout` if they came before it;
//! until then they may be a docker archive's (`docker save`), which
//! [`crate::formats::docker_archive`] describes: a tar with no
//! `oci-layout` and a `manifest.json` is imported as one. docker save 25
//! and later writes both: the OCI index is used, `manifest.json` and
//! `repositories` are read over. At the end, before `index.json` is
//! touched: `oci-layout` must say version 1.0.0, the archive's `index.json`
//! must parse, and every entry's graph must be complete in our layout. Then
//! the entries are added under the index lock: tagged ones with
//! [`Index::set_ref`](crate::Index::set_ref) (a ref that exists here with
//! another digest is refused unless [`ImportOptions::force`]), untagged
//! ones as untagged roots. On any error nothing is tagged; blobs stored
//! before it are unreferenced and go with the next gc.

pub(crate) mod blob_in;
pub(crate) mod export;
mod import;
mod loader;
pub(crate) mod refs;
pub(crate) mod tar_in;

pub use export::{ArchivePlan, export_archive, export_archive_file};
pub use import::import_archive;
pub use loader::ArchiveLoader;
pub use refs::{ImportOptions, ImportReport, ImportedRef, RefChange};

/// What errors name as the thing read.
const ARCHIVE: &str = "OCI archive";

/// The largest `oci-layout` member read (4 KiB).
const OCI_LAYOUT_LIMIT: u64 = 4096;

#[cfg(test)]
mod tests;
