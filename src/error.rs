//! The library's one error type.

use std::io;
use std::path::{Path, PathBuf};

use crate::io::digest::Digest;

/// Everything that can go wrong in epoch-store.
///
/// Every I/O error carries the operation and the path it failed on (or, for
/// a stream that is not a file, what it was), and every variant's message
/// says what is wrong in terms a user can act on. Callers that decide what
/// to do match [`Error::kind`], not messages.
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
    /// Reading or writing a stream that is not a file of ours failed (a pipe,
    /// stdin, the body of a tar member, an export going to stdout).
    #[error("{op} {what}: {source}")]
    Stream {
        /// What was being done ("read", "write").
        op: &'static str,
        /// The stream ("the cocoon snapshot tar stream", "the body of \"disk.raw\"").
        what: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A file epoch-store would create is already there, and replacing it
    /// was not asked for.
    #[error("{} already exists; {advice}", path.display())]
    AlreadyExists {
        /// The file or directory.
        path: PathBuf,
        /// What to do about it.
        advice: &'static str,
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
    /// An argument or option the caller gave cannot be used for the
    /// operation (a name, a size, a ref that holds something else).
    #[error("{0}")]
    InvalidArgument(String),
    /// A registry could not be reached, or answered with an error.
    #[error("{registry}: {reason}")]
    Registry {
        /// The registry (`host[:port]`) and what was being done.
        registry: String,
        /// What went wrong, and what to do about it.
        reason: String,
        /// What kind of failure it was.
        kind: ErrorKind,
    },
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

/// What kind of failure an [`Error`] is: what a caller deciding what to do
/// next matches on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// An operating-system call failed: full disk, permissions, a pulled
    /// stick, a broken pipe.
    Io,
    /// A ref, blob or layout is not there.
    NotFound,
    /// Stored content does not match what refers to it (digest, size, a
    /// graph that is not whole): restore it from another copy.
    Damaged,
    /// A document, stream or file from outside does not follow its format.
    Malformed,
    /// An argument, option or input file cannot be used as given.
    InvalidInput,
    /// Something already there is in the way (a file, a ref with another
    /// digest, an ambiguous ref).
    Conflict,
    /// Over a limit: a document too large to read, sizes past 64 bits.
    TooLarge,
    /// A version or layout this build does not read.
    Unsupported,
    /// An operation declined to go on because it could not be done safely
    /// (gc that cannot see everything, a layout directory that is a symlink).
    Refused,
    /// A registry could not be reached, or did not let us in (401, 403).
    Network,
}

impl Error {
    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Io { .. } | Error::Stream { .. } => ErrorKind::Io,
            Error::BlobNotFound { .. } | Error::RefNotFound { .. } | Error::NotALayout { .. } => {
                ErrorKind::NotFound
            }
            Error::DigestMismatch { .. }
            | Error::SizeMismatch { .. }
            | Error::IncompleteGraph { .. } => ErrorKind::Damaged,
            Error::InvalidDocument { .. } | Error::InvalidSparseMap { .. } => ErrorKind::Malformed,
            Error::InvalidDigest { .. }
            | Error::InvalidRef { .. }
            | Error::InvalidArgument(_)
            | Error::NotRegularFile { .. } => ErrorKind::InvalidInput,
            Error::AlreadyExists { .. } | Error::AmbiguousRef { .. } => ErrorKind::Conflict,
            Error::TooLarge { .. } | Error::Overflow { .. } => ErrorKind::TooLarge,
            Error::UnsupportedLayoutVersion { .. } => ErrorKind::Unsupported,
            Error::GcRefused { .. } | Error::LayoutDirectory { .. } => ErrorKind::Refused,
            Error::Registry { kind, .. } => *kind,
        }
    }

    /// The file or directory the error is about, when it is about one.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Error::Io { path, .. }
            | Error::AlreadyExists { path, .. }
            | Error::NotALayout { path, .. }
            | Error::UnsupportedLayoutVersion { path, .. }
            | Error::BlobNotFound { path, .. }
            | Error::NotRegularFile { path, .. }
            | Error::RefNotFound { path, .. }
            | Error::LayoutDirectory { path, .. } => Some(path),
            _ => None,
        }
    }

    /// The blob the error is about, when it is about one.
    pub fn digest(&self) -> Option<&Digest> {
        match self {
            Error::DigestMismatch { expected, .. } => Some(expected),
            Error::SizeMismatch { digest, .. } | Error::BlobNotFound { digest, .. } => Some(digest),
            _ => None,
        }
    }

    /// The underlying OS error, for an [`ErrorKind::Io`] error.
    pub fn io_error(&self) -> Option<&io::Error> {
        match self {
            Error::Io { source, .. } | Error::Stream { source, .. } => Some(source),
            _ => None,
        }
    }

    /// A stream error: `op` on `what`, which is not a path.
    pub(crate) fn stream(op: &'static str, what: impl Into<String>, source: io::Error) -> Self {
        Error::Stream {
            op,
            what: what.into(),
            source,
        }
    }

    /// An [`Error::InvalidDocument`] about `what`.
    pub(crate) fn document(what: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::InvalidDocument {
            what: what.into(),
            reason: reason.into(),
        }
    }

    /// This error, naming `what` as the document it is about if it is an
    /// [`Error::InvalidDocument`] (a parser knows only "index.json"; its
    /// caller knows which file or blob).
    pub(crate) fn in_document(self, what: impl Into<String>) -> Self {
        match self {
            Error::InvalidDocument { reason, .. } => Error::InvalidDocument {
                what: what.into(),
                reason,
            },
            e => e,
        }
    }

    /// What is wrong, without naming the document: the reason of an
    /// [`Error::InvalidDocument`], else the whole message.
    pub(crate) fn into_reason(self) -> String {
        match self {
            Error::InvalidDocument { reason, .. } => reason,
            e => e.to_string(),
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Layout;

    #[test]
    fn callers_can_tell_failures_apart_without_reading_messages() -> Result<()> {
        let dir = tempfile::tempdir().unwrap();
        let missing = Layout::open(dir.path().join("nothing")).unwrap_err();
        assert_eq!(missing.kind(), ErrorKind::NotFound);
        assert_eq!(missing.path(), Some(dir.path().join("nothing").as_path()));

        let layout = Layout::init(dir.path().join("l"))?;
        let desc = layout.writer()?.put_bytes("x/y", b"hello")?;
        std::fs::write(layout.blob_path(&desc.digest), b"jello").unwrap();
        let damaged = layout.read_blob(&desc, 1 << 20).unwrap_err();
        assert_eq!(damaged.kind(), ErrorKind::Damaged, "{damaged}");
        assert_eq!(damaged.digest(), Some(&desc.digest));

        let unparsable = crate::Index::parse(b"[]").unwrap_err();
        assert_eq!(unparsable.kind(), ErrorKind::Malformed);
        let named = unparsable.in_document("stick/index.json");
        assert!(
            named.to_string().starts_with("stick/index.json: "),
            "{named}"
        );

        let gone = Error::io("read", "/x", io::Error::from(io::ErrorKind::BrokenPipe));
        assert_eq!(gone.kind(), ErrorKind::Io);
        assert_eq!(
            gone.io_error().map(io::Error::kind),
            Some(io::ErrorKind::BrokenPipe)
        );
        Ok(())
    }
}
