//! The library's one error type.

use std::io;
use std::path::{Path, PathBuf};

use crate::io::digest::Digest;

/// Everything that can go wrong in epoch-store.
///
/// Every I/O error carries the operation and the path it failed on, and every
/// variant's message says what is wrong in terms a user can act on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An operating-system call failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done ("open", "fsync", "rename", ...).
        op: &'static str,
        /// The file or directory it was done to.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A string that should be a digest is not one we accept.
    #[error("invalid digest {value:?}: {reason}")]
    InvalidDigest {
        /// The offending text (truncated for display when very long).
        value: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// A ref name does not follow the OCI `ref.name` grammar.
    #[error("invalid ref name {value:?}: {reason}")]
    InvalidRef {
        /// The offending text.
        value: String,
        /// Why it was rejected.
        reason: String,
    },
    /// The directory is not an OCI image layout.
    #[error("{} is not an OCI image layout: {reason}", path.display())]
    NotALayout {
        /// The directory.
        path: PathBuf,
        /// What is missing or wrong.
        reason: String,
    },
    /// The layout declares a version this build does not understand.
    #[error("{}: unsupported imageLayoutVersion {version:?}; epoch-store reads version 1.0.0 only", path.display())]
    UnsupportedLayoutVersion {
        /// The `oci-layout` file.
        path: PathBuf,
        /// The version it declares.
        version: String,
    },
    /// Content does not hash to the digest it is stored or referenced under.
    #[error("blob {expected}: content hashes to {found}; the data is damaged")]
    DigestMismatch {
        /// The digest the content should have.
        expected: Digest,
        /// The digest it has.
        found: Digest,
    },
    /// Content does not have the size it was described with.
    #[error("blob {digest}: expected {expected} bytes, found {found}")]
    SizeMismatch {
        /// The blob's digest.
        digest: Digest,
        /// The size it was described with.
        expected: u64,
        /// The size it has.
        found: u64,
    },
    /// A blob is absent from `blobs/`.
    #[error("blob {digest} is missing ({})", path.display())]
    BlobNotFound {
        /// The blob's digest.
        digest: Digest,
        /// Where it should be.
        path: PathBuf,
    },
    /// An entry that should be a regular file is a symlink, directory, FIFO, ...
    #[error("{} is a {kind}, not a regular file; epoch-store never follows or reads it", path.display())]
    NotRegularFile {
        /// The entry.
        path: PathBuf,
        /// What it is.
        kind: &'static str,
    },
    /// A document is too large to be read into memory.
    #[error("{what} is {size} bytes, over the {limit}-byte limit for documents read into memory")]
    TooLarge {
        /// What was being read.
        what: String,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// A JSON document is malformed or does not follow its schema.
    #[error("{what}: {reason}")]
    InvalidDocument {
        /// Which document.
        what: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A ref name is not in `index.json`.
    #[error("no ref named {name:?} in {}; run `epoch-store ls` to see the refs", path.display())]
    RefNotFound {
        /// The ref name.
        name: String,
        /// The `index.json` searched.
        path: PathBuf,
    },
    /// `index.json` names one ref twice, for different manifests: which one
    /// is meant is unknown, so nothing picks one silently.
    #[error(
        "ref {name:?} is ambiguous: index.json has {} entries with that name, for {}; \
         settle it with `epoch-store tag DIGEST {name}` (which keeps one entry)",
        digests.len(), list(digests)
    )]
    AmbiguousRef {
        /// The ref name.
        name: String,
        /// The digests its entries point at, in index order.
        digests: Vec<Digest>,
    },
    /// What a ref reaches is not whole: a document that cannot be read, a
    /// missing blob, a size or `data` field that disagrees.
    #[error("{what}: {reason}; run `epoch-store verify` for the whole picture")]
    IncompleteGraph {
        /// What was refused ("cannot copy vm:v1", ...).
        what: String,
        /// The first flaw found.
        reason: String,
    },
    /// One of the layout's own directories (`blobs/`, `blobs/<alg>/`, the
    /// private directory) is a symlink or not a directory at all.
    #[error("{} is a {kind}, not a directory; {advice}", path.display())]
    LayoutDirectory {
        /// The entry.
        path: PathBuf,
        /// What it is.
        kind: &'static str,
        /// What it means and what to do.
        advice: &'static str,
    },
    /// A sparse map does not describe a file.
    #[error("invalid sparse map: {reason}")]
    InvalidSparseMap {
        /// What is wrong.
        reason: String,
    },
    /// Sizes taken from a document add up past what 64 bits hold: the
    /// document is hostile or damaged.
    #[error("{what} add up to more than 2^64 bytes; the manifest is damaged or hostile")]
    Overflow {
        /// What was being added up, and where it came from.
        what: String,
    },
    /// A ref or digest argument is not usable for the operation.
    #[error("{0}")]
    InvalidArgument(String),
    /// gc declined to sweep because it could not see everything that is reachable.
    #[error("gc refused to delete anything: {reason}")]
    GcRefused {
        /// Why.
        reason: String,
    },
}

fn list(digests: &[Digest]) -> String {
    let names: Vec<String> = digests.iter().map(Digest::to_string).collect();
    names.join(" and ")
}

/// `Result` with [`Error`] as its default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Wraps an I/O error with the operation and path it failed on.
    pub(crate) fn io(op: &'static str, path: impl AsRef<Path>, source: io::Error) -> Self {
        Error::Io {
            op,
            path: path.as_ref().to_path_buf(),
            source,
        }
    }
}

/// Adds an operation and a path to an `io::Result`.
pub(crate) trait IoContext<T> {
    /// Converts the error into [`Error::Io`] naming `op` and `path`.
    fn ctx(self, op: &'static str, path: impl AsRef<Path>) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn ctx(self, op: &'static str, path: impl AsRef<Path>) -> Result<T> {
        self.map_err(|e| Error::io(op, path, e))
    }
}
