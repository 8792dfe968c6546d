//! What is actually on disk under `blobs/` and in the private temp directory.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::error::{Error, IoContext, Result};
use crate::io::digest::{Algorithm, Digest};
use crate::store::layout::Layout;

/// A regular file with a digest name (or a temp file). Its metadata is read
/// only when asked for, relative to its directory: gc needs it only for the
/// blobs it may delete.
#[derive(Debug)]
pub(crate) struct BlobFile {
    pub path: PathBuf,
    entry: fs::DirEntry,
}

impl BlobFile {
    /// Size and mtime (lstat, relative to the directory).
    pub(crate) fn stat(&self) -> Result<(u64, SystemTime)> {
        let md = self.entry.metadata().ctx("stat", &self.path)?;
        Ok((md.len(), md.modified().ctx("stat", &self.path)?))
    }
}

/// An entry that is not a blob: its path and what is wrong with it.
#[derive(Clone, Debug)]
pub(crate) struct Stray {
    pub path: PathBuf,
    pub what: StrayKind,
}

/// Why a [`Stray`] is not a blob.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum StrayKind {
    /// A symlink, directory, FIFO, ... where a blob should be.
    NotRegular(&'static str),
    /// A file whose name is not a digest of its directory's algorithm.
    BadName,
    /// A directory under `blobs/` for an algorithm we do not support.
    UnknownAlgorithm,
}

/// The blobs and strays under `blobs/`, and the temp files.
#[derive(Debug, Default)]
pub(crate) struct Inventory {
    pub blobs: HashMap<Digest, BlobFile>,
    pub strays: Vec<Stray>,
    pub temp_files: Vec<BlobFile>,
}

impl Inventory {
    /// Scans the layout. Nothing is followed: file types come from the
    /// directory entries (lstat where the filesystem does not say).
    pub(crate) fn scan(layout: &Layout) -> Result<Inventory> {
        let mut inv = Inventory::default();
        let blobs = layout.root().join("blobs");
        for (path, entry) in read_dir_if_exists(&blobs)? {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            let kind = file_type(&entry, &path)?;
            match Algorithm::from_name(name) {
                Some(alg) if kind.is_dir() => inv.scan_alg_dir(alg, &path)?,
                Some(_) => inv.strays.push(Stray {
                    path,
                    what: StrayKind::NotRegular(crate::io::input::type_name(kind)),
                }),
                None => inv.strays.push(Stray {
                    path,
                    what: StrayKind::UnknownAlgorithm,
                }),
            }
        }
        for (path, entry) in read_dir_if_exists(&layout.tmp_dir())? {
            if file_type(&entry, &path)?.is_file() {
                inv.temp_files.push(BlobFile { path, entry });
            }
        }
        Ok(inv)
    }

    fn scan_alg_dir(&mut self, alg: Algorithm, dir: &Path) -> Result<()> {
        for (path, entry) in read_dir_if_exists(dir)? {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            let Ok(digest) = Digest::from_hex(alg, name) else {
                self.strays.push(Stray {
                    path,
                    what: StrayKind::BadName,
                });
                continue;
            };
            let kind = file_type(&entry, &path)?;
            if kind.is_file() {
                self.blobs.insert(digest, BlobFile { path, entry });
            } else {
                self.strays.push(Stray {
                    path,
                    what: StrayKind::NotRegular(crate::io::input::type_name(kind)),
                });
            }
        }
        Ok(())
    }
}

/// What a directory entry is, without following it (`DirEntry::file_type`
/// asks lstat where the directory does not say).
fn file_type(entry: &fs::DirEntry, path: &Path) -> Result<fs::FileType> {
    entry.file_type().ctx("stat", path)
}

/// Lists a directory's entries; a missing directory is empty.
fn read_dir_if_exists(dir: &Path) -> Result<Vec<(PathBuf, fs::DirEntry)>> {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => return Err(Error::io("list directory", dir, e)),
    };
    rd.map(|e| {
        let e = e.ctx("list directory", dir)?;
        Ok((e.path(), e))
    })
    .collect()
}
