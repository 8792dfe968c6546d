//! cocoonstack OS disk images (artifactType `os-image`, legacy
//! `windows-image`), as cocoonstack's Windows build pushes them and
//! cocoon-common's `cloudimg` reads them (`docs/cocoon-snapshot-format.md`
//! §4): a disk larger than the part size is split into byte ranges of the
//! logical file, titled as GNU `split -d` names them, plus a `SHA256SUMS`
//! text layer; a reader keeps the disk layers, sorts them by title and
//! concatenates them.
//!
//! Holes of a sparse disk are never read: they are hashed from a zero
//! buffer and left as holes in the stored parts ([`BlobWriter::write_zeros`]).
//!
//! [`BlobWriter::write_zeros`]: crate::BlobWriter::write_zeros

mod pack;
mod title;
mod unpack;

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use crate::model::media_type as mt;

pub use pack::pack;
pub use title::{part_title, split_suffix};
pub use unpack::{ImagePlan, plan, unpack};

/// Default part size: 512 MiB, the snapshot chunk size. Parts are hashed
/// one per core, so an image cut in two uneven parts (cocoonstack's Windows
/// build uses 1900 MiB, below GHCR's per-layer limit) packs at one core's
/// speed: 2 GiB took 2.8 s in 1900 MiB parts and 1.7 s in 512 MiB parts
/// (`docs/performance.md`). Any part size reassembles the same way.
pub const DEFAULT_PART_SIZE: u64 = 512 << 20;
/// Most parts one image may have.
pub const MAX_PARTS: u64 = 10_000;
/// Manifest annotation: the disk format, `qcow2` or `raw`.
pub const DISK_FORMAT: &str = "cocoonstack.disk.format";
/// Manifest annotation on split images: the shell command that joins the parts.
pub const DISK_REASSEMBLE: &str = "cocoonstack.disk.reassemble";
/// Title of the checksum layer.
pub const SHA256SUMS: &str = "SHA256SUMS";
/// Media type of the checksum layer.
pub const SHA256SUMS_MEDIA_TYPE: &str = "text/plain";

/// A disk image's format, detected from its content.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiskFormat {
    /// qcow2 (starts with `QFI\xfb`).
    Qcow2,
    /// Anything else.
    Raw,
}

impl DiskFormat {
    /// `qcow2` or `raw`.
    pub fn as_str(self) -> &'static str {
        match self {
            DiskFormat::Qcow2 => "qcow2",
            DiskFormat::Raw => "raw",
        }
    }

    /// qcow2 if the file starts with the qcow2 magic, else raw.
    ///
    /// # Errors
    /// I/O errors reading the first bytes.
    pub fn detect(file: &File) -> io::Result<DiskFormat> {
        let mut magic = [0u8; 4];
        let mut n = 0;
        while n < magic.len() {
            match file.read_at(&mut magic[n..], n as u64) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(if n == 4 && magic == *b"QFI\xfb" {
            DiskFormat::Qcow2
        } else {
            DiskFormat::Raw
        })
    }

    /// The layer media type: whole disk or part, cocoonstack or legacy Windows.
    pub fn media_type(self, part: bool, windows: bool) -> &'static str {
        match (self, part, windows) {
            (DiskFormat::Qcow2, false, false) => mt::DISK_QCOW2,
            (DiskFormat::Qcow2, true, false) => mt::DISK_QCOW2_PART,
            (DiskFormat::Raw, false, false) => mt::DISK_RAW,
            (DiskFormat::Raw, true, false) => mt::DISK_RAW_PART,
            (DiskFormat::Qcow2, false, true) => mt::WINDOWS_DISK_QCOW2,
            (DiskFormat::Qcow2, true, true) => mt::WINDOWS_DISK_QCOW2_PART,
            (DiskFormat::Raw, false, true) => mt::WINDOWS_DISK_RAW,
            (DiskFormat::Raw, true, true) => mt::WINDOWS_DISK_RAW_PART,
        }
    }
}

/// How to pack an OS image.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ImageOptions {
    /// Files larger than this are split into parts of this size.
    pub part_size: u64,
    /// Use the legacy `windows.disk.*` media types.
    pub windows: bool,
    /// The file name in titles (default: the file's own name).
    pub name: Option<String>,
    /// Add a `SHA256SUMS` layer over the parts.
    pub sha256sums: bool,
}

impl Default for ImageOptions {
    fn default() -> Self {
        ImageOptions {
            part_size: DEFAULT_PART_SIZE,
            windows: false,
            name: None,
            sha256sums: true,
        }
    }
}

impl ImageOptions {
    /// Sets the part size.
    pub fn part_size(mut self, size: u64) -> Self {
        self.part_size = size;
        self
    }
    /// Uses the legacy Windows disk media types.
    pub fn windows(mut self, on: bool) -> Self {
        self.windows = on;
        self
    }
    /// Sets the file name used in titles.
    pub fn name(mut self, name: Option<String>) -> Self {
        self.name = name;
        self
    }
    /// Adds (or not) the `SHA256SUMS` layer.
    pub fn sha256sums(mut self, on: bool) -> Self {
        self.sha256sums = on;
        self
    }
}
