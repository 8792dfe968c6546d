//! A [`Loader`] over an OCI archive file (skopeo's `oci-archive:`, our
//! `export-archive`), read in place: one pass over the tar finds every
//! blob's offset; a plain archive's blobs are then read where they lie,
//! a gzip one's by reading the stream again up to the blob (small blobs,
//! the manifests and configs, are kept from the first pass). Every read is
//! verified against its digest.

use std::collections::HashMap;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::ARCHIVE;
use super::import::{blob_name, check_marker, outside};
use super::tar_in::{Kind, TarIn, bad};
use crate::error::{Error, IoContext, Result};
use crate::formats::image::Loader;
use crate::io::digest::Digest;
use crate::io::input::open_input;
use crate::model::{Descriptor, media_type as mt};
use crate::store::index::Index;
use crate::store::layout::{DOCUMENT_LIMIT, INDEX_LIMIT};
use crate::store::reader::BlobReader;

/// Blobs up to this size are kept in memory by the first pass of a gzip
/// archive (manifests and configs are a few KiB).
const KEEP_LIMIT: u64 = 256 << 10;

/// Where a blob is in the archive.
#[derive(Clone, Copy, Debug)]
struct Place {
    offset: u64,
    size: u64,
}

/// A [`Loader`] over an OCI archive file.
#[derive(Debug)]
pub struct ArchiveLoader {
    path: PathBuf,
    gzip: bool,
    places: HashMap<Digest, Place>,
    kept: HashMap<Digest, Vec<u8>>,
    /// The archive's `index.json`.
    index: Vec<u8>,
    /// The entry asked for; `None`: the whole index.
    entry: Option<Descriptor>,
}

impl ArchiveLoader {
    /// Reads the archive at `path` through once. The root is `target`'s
    /// entry of its `index.json` (a ref name or digest), or with no target
    /// the `index.json` itself (every image the archive holds).
    ///
    /// # Errors
    /// What [`import_archive`](super::import_archive) refuses of the
    /// tar itself; a missing `oci-layout` or `index.json`; a `target` the
    /// archive has no entry for (naming the refs it has).
    pub fn open(path: &Path, target: Option<&str>) -> Result<ArchiveLoader> {
        let (file, _) = open_input(path)?;
        let mut tar = TarIn::new(io::BufReader::new(file))?;
        let mut places = HashMap::new();
        let mut kept = HashMap::new();
        let (mut marker, mut index) = (false, None);
        while let Some(member) = tar.next_member()? {
            let name = member.name.as_str();
            if member.kind == Kind::Dir {
                if !(name.is_empty() || name == "blobs" || name.starts_with("blobs/")) {
                    return Err(outside(name));
                }
                continue;
            }
            match name {
                "oci-layout" => {
                    marker = true;
                    check_marker(&tar.read_body("oci-layout")?)?;
                }
                "index.json" if member.size <= INDEX_LIMIT => {
                    index = Some(tar.read_body("index.json")?);
                }
                "index.json" => return Err(bad("member index.json is over its size limit")),
                _ => {
                    let digest = blob_name(name)?;
                    let place = Place {
                        offset: tar.body_offset(),
                        size: member.size,
                    };
                    if tar.is_gzip() && member.size <= KEEP_LIMIT {
                        kept.insert(digest.clone(), tar.read_body(name)?);
                    }
                    if places.insert(digest, place).is_some() {
                        return Err(bad(format!("member {name:?} appears twice")));
                    }
                }
            }
        }
        let gzip = tar.is_gzip();
        if !marker {
            return Err(bad(
                "it has no oci-layout member; this is not an OCI archive",
            ));
        }
        let index = index.ok_or_else(|| bad("it has no index.json member"))?;
        let entry = target.map(|t| find_entry(&index, t, path)).transpose()?;
        Ok(ArchiveLoader {
            path: path.to_path_buf(),
            gzip,
            places,
            kept,
            index,
            entry,
        })
    }

    /// A reader of exactly the blob's bytes, unverified.
    fn raw(&self, desc: &Descriptor) -> Result<Box<dyn Read + '_>> {
        if let Some(bytes) = self.kept.get(&desc.digest) {
            return Ok(Box::new(io::Cursor::new(bytes.as_slice())));
        }
        let place = self
            .places
            .get(&desc.digest)
            .ok_or_else(|| Error::InvalidDocument {
                what: format!("{ARCHIVE} {}", self.path.display()),
                reason: format!("it has no blob {}", desc.digest),
            })?;
        let (mut file, _) = open_input(&self.path)?;
        if !self.gzip {
            file.seek(SeekFrom::Start(place.offset))
                .ctx("seek", &self.path)?;
            return Ok(Box::new(file.take(place.size)));
        }
        let mut decoded = flate2::read::MultiGzDecoder::new(io::BufReader::new(file));
        let skipped = io::copy(&mut (&mut decoded).take(place.offset), &mut io::sink())
            .ctx("read", &self.path)?;
        if skipped != place.offset {
            return Err(bad("the archive changed since it was read"));
        }
        Ok(Box::new(decoded.take(place.size)))
    }
}

/// The entry of `index` (an `index.json`) that `target` (a ref name or
/// digest) names.
fn find_entry(index: &[u8], target: &str, path: &Path) -> Result<Descriptor> {
    let parsed =
        Index::parse(index).map_err(|e| e.in_document(format!("{ARCHIVE} member index.json")))?;
    let by_name = parsed.find(target).ok().flatten();
    let entry = by_name.or_else(|| {
        parsed
            .entries()
            .iter()
            .find(|d| d.digest.to_string() == target)
    });
    entry.cloned().ok_or_else(|| {
        let refs: Vec<&str> = parsed.refs().map(|(n, _)| n).collect();
        Error::InvalidArgument(format!(
            "{} has no ref {target:?}; it has: {}",
            path.display(),
            if refs.is_empty() {
                "no refs".to_string()
            } else {
                refs.join(", ")
            }
        ))
    })
}

impl Loader for ArchiveLoader {
    fn root_digest(&self) -> Option<Digest> {
        self.entry.as_ref().map(|e| e.digest.clone())
    }

    /// The entry asked for, or the archive's `index.json` (an OCI index
    /// of everything it holds).
    fn root(&self) -> Result<(Vec<u8>, String)> {
        match &self.entry {
            Some(entry) => Ok((self.manifest(entry)?, entry.media_type.clone())),
            None => Ok((self.index.clone(), mt::OCI_INDEX.to_string())),
        }
    }

    fn manifest(&self, desc: &Descriptor) -> Result<Vec<u8>> {
        if desc.size > DOCUMENT_LIMIT {
            return Err(Error::TooLarge {
                what: format!("document {}", desc.digest),
                size: desc.size,
                limit: DOCUMENT_LIMIT,
            });
        }
        let mut bytes = Vec::new();
        self.blob(desc)?.read_to_end(&mut bytes).map_err(|e| {
            Error::stream("read", format!("blob {} of the {ARCHIVE}", desc.digest), e)
        })?;
        Ok(bytes)
    }

    fn blob(&self, desc: &Descriptor) -> Result<Box<dyn Read + '_>> {
        if let Some(place) = self.places.get(&desc.digest)
            && place.size != desc.size
        {
            return Err(Error::SizeMismatch {
                digest: desc.digest.clone(),
                expected: desc.size,
                found: place.size,
            });
        }
        Ok(Box::new(BlobReader::new(
            self.raw(desc)?,
            desc.digest.clone(),
            desc.size,
        )))
    }
}
