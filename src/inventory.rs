//! What is actually on disk under `blobs/` and in the private temp directory.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::digest::{Algorithm, Digest};
use crate::durable;
use crate::error::{Error, IoContext, Result};
use crate::layout::Layout;

/// A regular file with a digest name.
#[derive(Clone, Debug)]
pub(crate) struct BlobFile {
    pub path: PathBuf,
    pub size: u64,
    pub modified: SystemTime,
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
    pub blobs: BTreeMap<Digest, BlobFile>,
    pub strays: Vec<Stray>,
    pub temp_files: Vec<BlobFile>,
}

impl Inventory {
    /// Scans the layout. Nothing is followed: every entry is lstat'ed.
    pub(crate) fn scan(layout: &Layout) -> Result<Inventory> {
        let mut inv = Inventory::default();
        let blobs = layout.root().join("blobs");
        for entry in read_dir_if_exists(&blobs)? {
            let (path, md) = entry?;
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            match Algorithm::from_name(name) {
                Some(alg) if md.is_dir() => inv.scan_alg_dir(alg, &path)?,
                Some(_) => inv.strays.push(Stray {
                    path,
                    what: StrayKind::NotRegular(durable::kind_name(&md)),
                }),
                None => inv.strays.push(Stray {
                    path,
                    what: StrayKind::UnknownAlgorithm,
                }),
            }
        }
        for entry in read_dir_if_exists(&layout.tmp_dir())? {
            let (path, md) = entry?;
            if md.is_file() {
                inv.temp_files.push(BlobFile {
                    modified: md.modified().ctx("stat", &path)?,
                    size: md.len(),
                    path,
                });
            }
        }
        Ok(inv)
    }

    fn scan_alg_dir(&mut self, alg: Algorithm, dir: &Path) -> Result<()> {
        for entry in read_dir_if_exists(dir)? {
            let (path, md) = entry?;
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            let Ok(digest) = Digest::from_hex(alg, name) else {
                self.strays.push(Stray {
                    path,
                    what: StrayKind::BadName,
                });
                continue;
            };
            if !md.is_file() {
                self.strays.push(Stray {
                    path,
                    what: StrayKind::NotRegular(durable::kind_name(&md)),
                });
                continue;
            }
            let modified = md.modified().ctx("stat", &path)?;
            self.blobs.insert(
                digest,
                BlobFile {
                    path,
                    size: md.len(),
                    modified,
                },
            );
        }
        Ok(())
    }
}

type Entry = Result<(PathBuf, fs::Metadata)>;

/// Lists a directory's entries with their lstat metadata; a missing
/// directory is empty.
fn read_dir_if_exists(dir: &Path) -> Result<Vec<Entry>> {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => return Err(Error::io("list directory", dir, e)),
    };
    Ok(rd
        .map(|e| {
            let e = e.ctx("list directory", dir)?;
            let path = e.path();
            let md = fs::symlink_metadata(&path).ctx("stat", &path)?;
            Ok((path, md))
        })
        .collect())
}
