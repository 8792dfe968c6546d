//! New layers for [`build`](super::build): a directory or a single file
//! made into a reproducible tar and gzipped on every core, or a tar given
//! as it is (gzipped here when it is plain); each layer's diffID computed
//! from its bytes, never taken on trust.

use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::error::{Error, IoContext, Result};
use crate::io::digest::{Algorithm, Digest};
use crate::io::gzip::ParallelGzip;
use crate::io::hash::{HashingWriter, hash_reader};
use crate::io::input::open_input;
use crate::model::{Descriptor, media_type as mt};
use crate::store::writer::Writer;
use crate::tar::rootfs::RootfsTar;

/// Where a new layer comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LayerSource {
    /// A directory: everything under it, at the image's root.
    Tree(PathBuf),
    /// A tar file (plain, gzip or zstd, told by its first bytes).
    Tar(PathBuf),
    /// One file, stored as `name` (a path in the image, without the
    /// leading `/`) with `mode`.
    File {
        /// The file to read.
        path: PathBuf,
        /// Its path in the image.
        name: String,
        /// Its mode there.
        mode: u32,
    },
}

/// A layer written to the layout.
#[derive(Clone, Debug)]
pub struct NewLayer {
    /// The layer blob, with the OCI media type of its compression.
    pub descriptor: Descriptor,
    /// The digest of its uncompressed tar.
    pub diff_id: Digest,
}

/// How a tar file given as a layer is compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Compression {
    Plain,
    Gzip,
    Zstd,
}

/// Writes the layer `source` describes into `writer`'s layout, gzipped at
/// `level` when it is made here.
///
/// # Errors
/// A source that is missing or of the wrong kind; a tar that does not
/// decompress; I/O errors.
pub(crate) fn write_layer(
    writer: &Writer<'_>,
    source: &LayerSource,
    level: u32,
) -> Result<NewLayer> {
    match source {
        LayerSource::Tree(dir) => made_here(writer, level, |t| t.add_tree(dir)),
        LayerSource::File { path, name, mode } => {
            made_here(writer, level, |t| t.add_file(name, *mode, path))
        }
        LayerSource::Tar(path) => given_tar(writer, path, level),
    }
}

/// A layer whose tar `fill` writes, hashed as it is written, then gzipped.
fn made_here(
    writer: &Writer<'_>,
    level: u32,
    fill: impl FnOnce(
        &mut RootfsTar<HashingWriter<ParallelGzip<crate::store::writer::BlobWriter<'_, '_>>>>,
    ) -> Result<()>,
) -> Result<NewLayer> {
    let gz = ParallelGzip::new(writer.blob()?, level);
    let mut tar = RootfsTar::new(HashingWriter::new(gz));
    fill(&mut tar)?;
    let hashing = tar.finish()?;
    let (gz, diff_id) = hashing.finish();
    let blob = gz
        .finish()
        .map_err(|e| Error::stream("write", "the layer", e))?;
    let descriptor = blob.commit(mt::OCI_LAYER_TAR_GZIP, None)?;
    Ok(NewLayer {
        descriptor,
        diff_id,
    })
}

/// A tar file given as a layer: stored as it is when compressed (its
/// diffID from decompressing it), gzipped when plain.
fn given_tar(writer: &Writer<'_>, path: &Path, level: u32) -> Result<NewLayer> {
    let (mut file, _) = open_input(path)?;
    let mut magic = Vec::with_capacity(4);
    (&mut file)
        .take(4)
        .read_to_end(&mut magic)
        .ctx("read", path)?;
    let compression = match magic.as_slice() {
        [0x1f, 0x8b, ..] => Compression::Gzip,
        [0x28, 0xb5, 0x2f, 0xfd] => Compression::Zstd,
        _ => Compression::Plain,
    };
    if compression == Compression::Plain {
        return made_here_from_plain(writer, path, level);
    }
    let (media_type, decoded): (&str, Box<dyn Read>) = match compression {
        Compression::Gzip => (
            mt::OCI_LAYER_TAR_GZIP,
            Box::new(flate2::read::MultiGzDecoder::new(open_input(path)?.0)),
        ),
        _ => (
            mt::OCI_LAYER_TAR_ZSTD,
            Box::new(zstd::stream::read::Decoder::new(open_input(path)?.0).ctx("read", path)?),
        ),
    };
    let diff_id = hash_reader(Algorithm::Sha256, decoded).map_err(|e| {
        Error::InvalidArgument(format!(
            "{}: does not decompress as the {} it starts as: {e}",
            path.display(),
            if compression == Compression::Gzip {
                "gzip"
            } else {
                "zstd"
            }
        ))
    })?;
    let descriptor = writer.put_file(media_type, path, &crate::NoProgress)?;
    Ok(NewLayer {
        descriptor,
        diff_id,
    })
}

/// A plain tar file, gzipped here; its diffID is its own digest.
fn made_here_from_plain(writer: &Writer<'_>, path: &Path, level: u32) -> Result<NewLayer> {
    let (mut file, _) = open_input(path)?;
    let mut gz = HashingWriter::new(ParallelGzip::new(writer.blob()?, level));
    io::copy(&mut file, &mut gz).map_err(|e| Error::io("read", path, e))?;
    let (gz, diff_id) = gz.finish();
    let blob = gz
        .finish()
        .map_err(|e| Error::stream("write", "the layer", e))?;
    Ok(NewLayer {
        descriptor: blob.commit(mt::OCI_LAYER_TAR_GZIP, None)?,
        diff_id,
    })
}
