//! The OCI image layout on disk: `oci-layout`, `index.json`, `blobs/<alg>/<hex>`,
//! and epoch-store's private directory beside them.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::error::{Error, IoContext, Result};
use crate::io::copy_range::CopyMode;
use crate::io::digest::{Algorithm, Digest};
use crate::io::durable;
use crate::model::name::validate_ref;
use crate::model::{Descriptor, Document, media_type};
use crate::store::index::Index;
use crate::store::reader::BlobReader;

/// The hidden directory at the layout root that holds epoch-store's private
/// state: `tmp/` (temp files being written) and the lock files. Never inside
/// `blobs/`, where other tools' gc would choke on non-digest names.
pub const PRIVATE_DIR: &str = ".epoch-store";

/// The only `imageLayoutVersion` read or written.
pub const LAYOUT_VERSION: &str = "1.0.0";

/// Largest manifest, index or config read into memory (16 MiB).
pub const DOCUMENT_LIMIT: u64 = 16 << 20;

/// Largest `index.json` read into memory (64 MiB: some 200,000 entries).
pub const INDEX_LIMIT: u64 = 64 << 20;

/// An OCI image layout directory.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// use epoch_store::Layout;
/// let layout = Layout::init(dir.path())?;
/// let writer = layout.writer()?;
/// let blob = writer.put_bytes("application/octet-stream", b"hello")?;
/// let manifest = epoch_store::store::artifact::files_manifest(&writer, &[blob], None, None)?;
/// writer.update_index(|index| Ok(index.set_ref(&"hello:v1".parse()?, &manifest)))?;
/// assert_eq!(layout.resolve("hello:v1")?.digest, manifest.digest);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct Layout {
    root: PathBuf,
    copy_mode: CopyMode,
}

impl Layout {
    /// This handle, moving file data with `mode` from now on (default
    /// [`CopyMode::Auto`]): how `pack` and `add` fill blobs from files and
    /// `unpack` fills files from blobs.
    #[must_use]
    pub fn with_copy_mode(mut self, mode: CopyMode) -> Layout {
        self.copy_mode = mode;
        self
    }

    /// How this handle moves file data (see [`Layout::with_copy_mode`]).
    pub fn copy_mode(&self) -> CopyMode {
        self.copy_mode
    }

    /// Opens an existing layout, checking `oci-layout` and that `index.json` exists.
    ///
    /// # Errors
    /// [`Error::NotALayout`] or [`Error::UnsupportedLayoutVersion`] with the reason.
    pub fn open(root: impl AsRef<Path>) -> Result<Layout> {
        let layout = Layout {
            root: root.as_ref().to_path_buf(),
            copy_mode: CopyMode::Auto,
        };
        layout.check_marker()?;
        match fs::symlink_metadata(layout.index_path()) {
            Ok(md) if md.is_file() => {
                layout.check_dirs()?;
                Ok(layout)
            }
            Ok(md) => {
                Err(layout.not_a_layout(format!("index.json is a {}", crate::io::input::kind_name(&md))))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(layout
                .not_a_layout("index.json is missing (if it was lost, the blobs are still in blobs/: do not run gc; `epoch-store init` writes an empty one)".into())),
            Err(e) => Err(Error::io("stat", layout.index_path(), e)),
        }
    }

    /// Creates a layout at `root` (and the directory, if absent), or opens the
    /// one already there. An interrupted `init` is completed. A directory
    /// that holds anything else is refused: see [`Layout::init_with`].
    ///
    /// # Errors
    /// As [`Layout::init_with`].
    pub fn init(root: impl AsRef<Path>) -> Result<Layout> {
        Layout::init_with(root, &InitOptions::default())
    }

    /// [`Layout::init`] with options: unless [`InitOptions::force`], `root`
    /// must be absent, empty, a layout (with `oci-layout`), or what an
    /// interrupted `init` or copy leaves (only `oci-layout`, `blobs/` and the private directory),
    /// so that a typo (`--layout /`) does not turn a directory of other
    /// files into a layout.
    ///
    /// # Errors
    /// [`Error::NotALayout`] for a directory with other files in it (unless
    /// forced), for a file, and for an `index.json` without `oci-layout`
    /// (someone else's file we will not overwrite, even forced); I/O errors.
    pub fn init_with(root: impl AsRef<Path>, options: &InitOptions) -> Result<Layout> {
        let layout = Layout {
            root: root.as_ref().to_path_buf(),
            copy_mode: CopyMode::Auto,
        };
        if !layout.oci_layout_path().exists()
            && !options.force
            && let Some(foreign) = foreign_entry(&layout.root)?
        {
            return Err(layout.not_a_layout(format!(
                "it is not empty ({foreign:?} is not part of a layout), so init refuses to turn it \
                 into one; use an empty or new directory (such as {}), or pass --force",
                layout.root.join("store").display()
            )));
        }
        let has_marker = layout.oci_layout_path().exists();
        if has_marker {
            layout.check_marker()?;
        } else if layout.index_path().exists() {
            return Err(layout.not_a_layout(
                "it has index.json but no oci-layout; refusing to initialize over it".into(),
            ));
        }
        layout.check_dirs()?;
        durable::create_dir_durable(&layout.blobs_dir(Algorithm::Sha256))?;
        layout.ensure_private()?;
        if !has_marker {
            let marker = format!("{{\"imageLayoutVersion\":\"{LAYOUT_VERSION}\"}}");
            durable::replace(
                &layout.tmp_dir(),
                &layout.oci_layout_path(),
                marker.as_bytes(),
            )?;
        }
        if !layout.index_path().exists() {
            durable::replace(
                &layout.tmp_dir(),
                &layout.index_path(),
                &Index::new().to_bytes(),
            )?;
        }
        Ok(layout)
    }

    fn check_marker(&self) -> Result<()> {
        let path = self.oci_layout_path();
        let raw = match crate::io::input::read_capped(&path, 4096, "oci-layout") {
            Ok(raw) => raw,
            Err(Error::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                let why = if self.root.is_dir() {
                    "there is no oci-layout file (run `epoch-store init` to create a layout)"
                } else {
                    "it is not a directory"
                };
                return Err(self.not_a_layout(why.into()));
            }
            Err(Error::Io { source, .. }) if source.kind() == io::ErrorKind::NotADirectory => {
                return Err(self.not_a_layout("it is not a directory".into()));
            }
            Err(e) => return Err(e),
        };
        let value: serde_json::Value = serde_json::from_slice(&raw)
            .map_err(|e| self.not_a_layout(format!("oci-layout is not valid JSON: {e}")))?;
        match value.get("imageLayoutVersion").and_then(|v| v.as_str()) {
            Some(LAYOUT_VERSION) => Ok(()),
            Some(other) => Err(Error::UnsupportedLayoutVersion {
                path,
                version: other.to_string(),
            }),
            None => Err(self.not_a_layout("oci-layout has no imageLayoutVersion string".into())),
        }
    }

    /// Checks the layout's own directories without following anything:
    /// `blobs/`, `blobs/<alg>/` and the private directory with its `tmp/`
    /// must each be a real directory where they exist (a missing one is
    /// created by the first writer). A symlink there would make writers
    /// publish blobs outside the layout and readers trust what is not in
    /// it; a file there would make every listing fail. Every command
    /// opens a layout through this check.
    ///
    /// # Errors
    /// [`Error::LayoutDirectory`] naming the entry and what to do.
    pub(crate) fn check_dirs(&self) -> Result<()> {
        const BLOBS: &str = "blobs written through a link would land outside the layout, and \
             refs would point at nothing; epoch-store never follows links inside a layout. \
             Replace it with the directory it stands for (or use the layout it points into)";
        const PRIVATE: &str = "it is epoch-store's private directory (temp files and locks): \
             remove it (`rm` it if it is a file or link) and epoch-store recreates it";
        let blobs = self.root.join("blobs");
        if durable::real_dir(&blobs, BLOBS)? {
            for alg in Algorithm::ALL {
                durable::real_dir(&self.blobs_dir(alg), BLOBS)?;
            }
        }
        if durable::real_dir(&self.private_dir(), PRIVATE)? {
            durable::real_dir(&self.tmp_dir(), PRIVATE)?;
        }
        Ok(())
    }

    fn not_a_layout(&self, reason: String) -> Error {
        Error::NotALayout {
            path: self.root.clone(),
            reason,
        }
    }

    /// The layout's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `index.json`.
    pub fn index_path(&self) -> PathBuf {
        self.root.join("index.json")
    }

    /// `oci-layout`.
    pub fn oci_layout_path(&self) -> PathBuf {
        self.root.join("oci-layout")
    }

    /// `blobs/<alg>/`.
    pub fn blobs_dir(&self, algorithm: Algorithm) -> PathBuf {
        self.root.join("blobs").join(algorithm.name())
    }

    /// `blobs/<alg>/<hex>`: safe because a [`Digest`] is always validated.
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.blobs_dir(digest.algorithm()).join(digest.hex())
    }

    /// The private directory (see [`PRIVATE_DIR`]).
    pub fn private_dir(&self) -> PathBuf {
        self.root.join(PRIVATE_DIR)
    }

    /// Where temp files are written before they are published.
    pub fn tmp_dir(&self) -> PathBuf {
        self.private_dir().join("tmp")
    }

    pub(crate) fn ensure_private(&self) -> Result<()> {
        durable::create_dir_durable(&self.tmp_dir())
    }

    /// Reads and parses `index.json`.
    ///
    /// # Errors
    /// [`Error::InvalidDocument`] naming what is wrong, [`Error::TooLarge`], I/O errors.
    pub fn read_index(&self) -> Result<Index> {
        self.read_index_raw().map(|(_, index)| index)
    }

    /// `index.json`'s bytes as stored, and parsed.
    pub(crate) fn read_index_raw(&self) -> Result<(Vec<u8>, Index)> {
        let path = self.index_path();
        let raw = crate::io::input::read_capped(&path, INDEX_LIMIT, "index.json")?;
        let index = Index::parse(&raw).map_err(|e| e.in_document(path.display().to_string()))?;
        Ok((raw, index))
    }

    /// Resolves a ref name or a digest to a descriptor.
    ///
    /// A ref is looked up in `index.json`. A digest is looked up there too;
    /// failing that, the blob must exist, and its media type is taken from
    /// its own `mediaType` field when it is a JSON document.
    ///
    /// # Errors
    /// [`Error::RefNotFound`], [`Error::BlobNotFound`], [`Error::InvalidDigest`], [`Error::InvalidRef`].
    pub fn resolve(&self, spec: &str) -> Result<Descriptor> {
        let index = self.read_index()?;
        self.resolve_in(&index, spec)
    }

    /// [`Layout::resolve`] against an index already read.
    ///
    /// # Errors
    /// As [`Layout::resolve`].
    pub fn resolve_in(&self, index: &Index, spec: &str) -> Result<Descriptor> {
        if looks_like_digest(spec) {
            let digest = Digest::parse(spec)?;
            if let Some(d) = index.entries().iter().find(|d| d.digest == digest) {
                return Ok(d.clone());
            }
            return self.describe_blob(&digest);
        }
        validate_ref(spec)?;
        index
            .find(spec)?
            .cloned()
            .ok_or_else(|| Error::RefNotFound {
                name: spec.to_string(),
                path: self.index_path(),
            })
    }

    fn describe_blob(&self, digest: &Digest) -> Result<Descriptor> {
        let path = self.blob_path(digest);
        let md = match fs::symlink_metadata(&path) {
            Ok(md) => md,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(Error::BlobNotFound {
                    digest: digest.clone(),
                    path,
                });
            }
            Err(e) => return Err(Error::io("stat", path, e)),
        };
        let mut desc = Descriptor::new(media_type::GENERIC, digest.clone(), md.len());
        if md.is_file() && md.len() <= DOCUMENT_LIMIT {
            let raw = self.read_blob(&desc, DOCUMENT_LIMIT)?;
            if let Ok(doc) = Document::parse(&raw, None) {
                desc.media_type = doc.media_type.clone().unwrap_or_else(|| {
                    if doc.is_index() {
                        media_type::OCI_INDEX
                    } else {
                        media_type::OCI_MANIFEST
                    }
                    .to_string()
                });
                desc.artifact_type = doc.artifact_type.clone();
            }
        }
        Ok(desc)
    }

    /// Reads a whole blob of at most `limit` bytes, checking size and digest.
    ///
    /// # Errors
    /// [`Error::BlobNotFound`], [`Error::SizeMismatch`], [`Error::DigestMismatch`],
    /// [`Error::NotRegularFile`], [`Error::TooLarge`].
    pub fn read_blob(&self, desc: &Descriptor, limit: u64) -> Result<Vec<u8>> {
        if desc.size > limit {
            return Err(Error::TooLarge {
                what: format!("blob {}", desc.digest),
                size: desc.size,
                limit,
            });
        }
        let path = self.blob_path(&desc.digest);
        let raw = crate::io::input::read_capped(&path, limit, &format!("blob {}", desc.digest))
            .map_err(|e| self.missing(e, &desc.digest))?;
        if raw.len() as u64 != desc.size {
            return Err(Error::SizeMismatch {
                digest: desc.digest.clone(),
                expected: desc.size,
                found: raw.len() as u64,
            });
        }
        let found = Digest::of_bytes(desc.digest.algorithm(), &raw);
        if found != desc.digest {
            return Err(Error::DigestMismatch {
                expected: desc.digest.clone(),
                found,
            });
        }
        Ok(raw)
    }

    /// Reads, verifies and parses a manifest or index.
    ///
    /// # Errors
    /// As [`Layout::read_blob`], and [`Error::InvalidDocument`].
    pub fn read_document(&self, desc: &Descriptor) -> Result<(Vec<u8>, Document)> {
        let raw = self.read_blob(desc, DOCUMENT_LIMIT)?;
        let doc = Document::parse(&raw, Some(&desc.media_type))
            .map_err(|e| e.in_document(format!("document {}", desc.digest)))?;
        Ok((raw, doc))
    }

    /// Opens a blob for a verified streaming read.
    ///
    /// # Errors
    /// [`Error::BlobNotFound`], [`Error::NotRegularFile`], [`Error::SizeMismatch`].
    pub fn open_blob(&self, desc: &Descriptor) -> Result<BlobReader> {
        let file = self.open_blob_file(desc)?;
        Ok(BlobReader::new(file, desc.digest.clone(), desc.size))
    }

    /// Opens a blob's file (a regular file of the described size), for
    /// callers that check its digest themselves.
    pub(crate) fn open_blob_file(&self, desc: &Descriptor) -> Result<fs::File> {
        let path = self.blob_path(&desc.digest);
        let (file, md) =
            crate::io::input::open_regular(&path).map_err(|e| self.missing(e, &desc.digest))?;
        if md.len() != desc.size {
            return Err(Error::SizeMismatch {
                digest: desc.digest.clone(),
                expected: desc.size,
                found: md.len(),
            });
        }
        Ok(file)
    }

    fn missing(&self, e: Error, digest: &Digest) -> Error {
        match e {
            Error::Io { source, path, .. } if source.kind() == io::ErrorKind::NotFound => {
                Error::BlobNotFound {
                    digest: digest.clone(),
                    path,
                }
            }
            e => e,
        }
    }

    /// The shared gc lock, for a reader that must not see blobs swept
    /// under it, if it can be taken: `None` where the private directory is
    /// missing or the medium is read-only (no gc can run there either).
    pub(crate) fn reader_lock(&self) -> Option<crate::store::lock::Lock> {
        let path = self.lock_path(crate::store::lock::GC_LOCK);
        if !path.is_file() {
            return None;
        }
        crate::store::lock::acquire(&path, crate::store::lock::Mode::Shared).ok()
    }

    /// Path of a lock file in the private directory.
    pub(crate) fn lock_path(&self, name: &str) -> PathBuf {
        self.private_dir().join(name)
    }

    /// The repositories and tags, derived from the ref names in `index.json`.
    ///
    /// # Errors
    /// Errors reading `index.json`.
    pub fn catalog(&self) -> Result<crate::model::Catalog> {
        let index = self.read_index()?;
        let updated = self.index_mtime()?;
        Ok(crate::model::Catalog::from_refs(
            index.refs().map(|(name, d)| (name, d.digest.to_string())),
            &updated,
        ))
    }

    /// Last modification time of `index.json`, as RFC 3339.
    ///
    /// # Errors
    /// Errors reading its metadata.
    pub fn index_mtime(&self) -> Result<String> {
        let md = fs::metadata(self.index_path()).ctx("stat", self.index_path())?;
        let t = md.modified().ctx("stat", self.index_path())?;
        Ok(crate::io::timestamp::rfc3339(t))
    }
}

/// Options for [`Layout::init_with`].
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct InitOptions {
    /// Make a layout of a directory that holds other files too.
    pub force: bool,
}

impl InitOptions {
    /// Sets [`InitOptions::force`].
    pub fn force(mut self, force: bool) -> Self {
        self.force = force;
        self
    }
}

/// The names a layout (or an interrupted init or copy) has at its root.
const LAYOUT_NAMES: [&str; 4] = ["oci-layout", "index.json", "blobs", PRIVATE_DIR];

/// The first entry of `dir` that is not part of a layout, if any: what
/// makes it neither empty nor a layout. `None` for an absent directory.
///
/// # Errors
/// [`Error::NotALayout`] if `dir` is a file; I/O errors listing it.
pub(crate) fn foreign_entry(dir: &Path) -> Result<Option<String>> {
    let entries = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.kind() == io::ErrorKind::NotADirectory => {
            return Err(Error::NotALayout {
                path: dir.to_path_buf(),
                reason: "it is not a directory".into(),
            });
        }
        Err(e) => return Err(Error::io("list directory", dir, e)),
    };
    let mut names = Vec::new();
    for e in entries {
        let name = e.ctx("list directory", dir)?.file_name();
        let name = name.to_string_lossy().into_owned();
        if !LAYOUT_NAMES.contains(&name.as_str()) {
            names.push(name);
        }
    }
    names.sort();
    Ok(names.into_iter().next())
}

/// Whether `spec` is meant as a digest rather than a ref name: it starts
/// with `sha256:` or `sha512:` (and must then be a valid digest).
pub fn looks_like_digest(spec: &str) -> bool {
    Algorithm::ALL.iter().any(|a| {
        spec.strip_prefix(a.name())
            .is_some_and(|rest| rest.starts_with(':'))
    })
}

#[cfg(test)]
mod tests;
