//! Unpacking an ECI: each file to its own name in a directory, every byte
//! verified, published with the store's protocol (temp file beside it,
//! fsync, rename without clobbering), resumable like every unpack.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::read::{Packing, Part, read};
use crate::chunks::restore::{ChunkRef, restore_file};
use crate::chunks::resume::Session;
use crate::error::{Error, Result};
use crate::io::durable::{self, Published, TempFile};
use crate::io::progress::Progress;
use crate::io::sparse::SparseMap;
use crate::model::Descriptor;
use crate::model::eci::Role;
use crate::store::layout::Layout;
use crate::tar::read::{Dialect, TarStream, type_name, unknown_type};

/// How errors name a legacy layer's tar, and what it is read with.
const DIALECT: Dialect = Dialect {
    what: "ECI legacy layer",
    noun: "layer",
    what_in_limits: true,
    buffer: 1 << 20,
    pax_limit: 1 << 20,
    text_records: &[],
};

/// One file an unpack wrote.
#[derive(Clone, Debug, Serialize)]
pub struct Unpacked {
    /// What it is.
    pub role: Role,
    /// Where it is.
    pub path: PathBuf,
    /// Its size.
    pub size: u64,
}

/// Unpacks the ECI `manifest` into `dir` (created if absent): each file
/// (kernel, initrd, root disk, additional disks, config file, others) to
/// its own name ([`read`]), from its layer as it is (artifacts) or from
/// the tar the layer holds (legacy), every byte checked against the
/// layer's digest, then fsynced and renamed into place. Existing files are
/// refused unless `force`; a killed unpack is finished by running it again.
///
/// # Errors
/// As [`read`]; a missing or damaged blob; a legacy layer that does not
/// hold exactly one regular file; existing files; I/O errors. Nothing is
/// written when the plan is refused.
pub fn unpack(
    layout: &Layout,
    manifest: &Descriptor,
    dir: &Path,
    force: bool,
    progress: &dyn Progress,
) -> Result<Vec<Unpacked>> {
    layout.whole_graph(
        std::slice::from_ref(manifest),
        &format!("cannot unpack ECI {}", manifest.digest),
    )?;
    let image = read(layout, manifest)?;
    let names: Vec<&str> = image.parts.iter().map(|p| p.name.as_str()).collect();
    let session = Session::begin(dir, &manifest.digest, &names, force)?;
    let total = image.parts.iter().map(|p| p.layer.size).sum();
    progress.begin("unpacking", total);
    let mut out = Vec::with_capacity(image.parts.len());
    for part in &image.parts {
        let replace = session.may_replace(&part.name);
        let (path, size) = match part.packing {
            Packing::Raw => {
                let map = SparseMap::dense(part.layer.size);
                let chunks = [ChunkRef::raw(part.layer.clone())];
                let path = restore_file(
                    layout, dir, &part.name, &map, &chunks, 0o644, replace, progress,
                )?;
                (path, part.layer.size)
            }
            Packing::Tar => {
                untar(layout, part, dir, replace, progress).map_err(|e| named(e, part))?
            }
        };
        out.push(Unpacked {
            role: part.role,
            path,
            size,
        });
    }
    progress.finish();
    session.finish()?;
    Ok(out)
}

/// Names the layer and its file in a tar reader's error, which names only
/// "ECI legacy layer".
fn named(e: Error, part: &Part) -> Error {
    let what = format!("ECI legacy layer {} ({})", part.layer.digest, part.name);
    match e {
        Error::Stream { op, source, .. } => Error::Stream { op, what, source },
        Error::InvalidDocument { reason, .. } => Error::InvalidDocument { what, reason },
        other => other,
    }
}

/// Writes the one regular file a legacy layer's tar holds to `part.name`
/// in `dir`; the tar is read to its end, so the layer's digest (and gzip's
/// CRC) are checked before the file is published. Returns its path and size.
fn untar(
    layout: &Layout,
    part: &Part,
    dir: &Path,
    replace: bool,
    progress: &dyn Progress,
) -> Result<(PathBuf, u64)> {
    let layer = &part.layer;
    let bad = |why: String| DIALECT.bad(why);
    let reader = Counted {
        inner: layout.open_blob(layer)?,
        progress,
    };
    let Some(mut stream) = TarStream::new(reader, DIALECT)? else {
        return Err(bad("it is empty".into()));
    };
    let Some(header) = stream.next_header()? else {
        return Err(bad("its tar holds no file".into()));
    };
    if !matches!(header.kind, b'0' | b'\0') {
        let what = type_name(header.kind).map_or_else(|| unknown_type(header.kind), str::to_string);
        return Err(bad(format!("its tar holds a {what}, not a regular file")));
    }
    let dest = dir.join(&part.name);
    if !replace && std::fs::symlink_metadata(&dest).is_ok() {
        return Err(Error::AlreadyExists {
            path: dest,
            advice: "remove it or pass --force",
        });
    }
    let mut tmp = TempFile::beside(dir, &part.name, 0o600)?;
    stream.start_body(&part.name, header.size);
    let mut body = stream.body();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = body.read(&mut buf).map_err(|e| DIALECT.read_error(e))?;
        if n == 0 {
            break;
        }
        tmp.write_all(&buf[..n])?;
    }
    if stream.next_header()?.is_some() {
        return Err(bad(
            "its tar holds more than one file; an ECI layer holds one".into(),
        ));
    }
    publish(tmp, &dest, replace)?;
    Ok((dest, header.size))
}

/// Gives the file its mode, fsyncs it and renames it into place.
fn publish(tmp: TempFile, dest: &Path, replace: bool) -> Result<()> {
    crate::chunks::restore::set_mode(tmp.file(), tmp.path(), 0o644)?;
    tmp.sync()?;
    if replace {
        durable::replace_name(tmp, dest)?;
    } else if let Published::Existed(_) = durable::publish_noclobber(tmp, dest)? {
        return Err(Error::AlreadyExists {
            path: dest.to_path_buf(),
            advice: "it appeared while it was being unpacked; remove it or pass --force",
        });
    }
    durable::sync_dir(durable::parent(dest))
}

/// A reader that reports the bytes it reads as progress.
struct Counted<'p, R> {
    inner: R,
    progress: &'p dyn Progress,
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.advance(n as u64);
        Ok(n)
    }
}
