//! Packing a disk image file: parts are byte ranges of the logical file,
//! hashed and written in parallel, holes hashed as zeros and never read.

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::path::Path;

use super::{
    DISK_FORMAT, DISK_REASSEMBLE, DiskFormat, ImageOptions, MAX_PARTS, SHA256SUMS,
    SHA256SUMS_MEDIA_TYPE, part_title,
};
use crate::error::{Error, IoContext, Result};
use crate::io::progress::Progress;
use crate::io::sparse::SparseMap;
use crate::model::name::validate_file_name;
use crate::model::{Descriptor, annotation, media_type as mt};
use crate::store::writer::Writer;

/// Packs a disk image file as a cocoonstack OS image and returns the
/// manifest's descriptor, ready for [`crate::Index::set_ref`]. A file
/// larger than the part size is cut at fixed offsets of the logical file
/// into parts titled [`part_title`]; otherwise it is one layer titled with
/// its name. Parts are hashed and written in parallel, each byte read once
/// and holes never read.
///
/// # Errors
/// A zero part size, too many parts, a name that is not a plain file name,
/// a path that is not a regular file, I/O errors. Nothing references the
/// blobs written before an error; gc reclaims them.
pub fn pack(
    writer: &Writer<'_>,
    path: &Path,
    options: &ImageOptions,
    progress: &dyn Progress,
) -> Result<Descriptor> {
    if options.part_size == 0 {
        return Err(Error::InvalidArgument(
            "part size must be at least 1 byte (default 512MiB)".into(),
        ));
    }
    let (file, md) = crate::io::input::open_input(path)?;
    let name = image_name(path, options)?;
    let format = DiskFormat::detect(&file).ctx("read", path)?;
    let size = md.len();
    let split = size > options.part_size;
    let count = size.div_ceil(options.part_size);
    if split && count > MAX_PARTS {
        return Err(Error::InvalidArgument(format!(
            "{} would be {count} parts of {} bytes, over the limit of {MAX_PARTS}; use a larger --part-size",
            path.display(),
            options.part_size
        )));
    }
    if !split && options.sha256sums && name == SHA256SUMS {
        return Err(Error::InvalidArgument(format!(
            "the image cannot be titled {SHA256SUMS:?}, the checksum layer's title; pass --name or --no-sha256sums"
        )));
    }
    let map = SparseMap::of_file(&file).ctx("find data extents of", path)?;
    let media_type = format.media_type(split, options.windows);
    let ranges = if split {
        crate::chunks::write::cut(size, options.part_size)
    } else {
        vec![(0, size)]
    };
    progress.begin("packing", size);
    let results = crate::io::schedule::by_size(
        &ranges,
        crate::io::schedule::Workers::Cores,
        |r| r.1,
        |&(offset, len)| put_logical(writer, &file, path, &map, offset, len, media_type, progress),
    );
    let mut layers = Vec::with_capacity(ranges.len() + 1);
    for (i, r) in results.into_iter().enumerate() {
        let mut layer = r?;
        let title = if split {
            part_title(&name, i as u64, format.as_str())
        } else {
            name.clone()
        };
        layer.annotations.insert(annotation::TITLE.into(), title);
        layers.push(layer);
    }
    progress.finish();
    if options.sha256sums {
        let sums = sha256sums_layer(writer, &layers)?;
        layers.push(sums);
    }
    let mut annotations = BTreeMap::new();
    annotations.insert(
        annotation::CREATED.to_string(),
        crate::io::timestamp::now_rfc3339(),
    );
    annotations.insert(DISK_FORMAT.to_string(), format.as_str().to_string());
    if split {
        annotations.insert(
            DISK_REASSEMBLE.to_string(),
            format!("cat {name}.*.{}.part > {name}", format.as_str()),
        );
    }
    let config = writer.put_bytes(mt::OCI_EMPTY, b"{}")?;
    crate::store::artifact::write_manifest(
        writer,
        mt::ARTIFACT_OS_IMAGE,
        &config,
        &layers,
        &annotations,
    )
}

/// The image's file name: `--name`, else the file's own; a plain file name.
fn image_name(path: &Path, options: &ImageOptions) -> Result<String> {
    let name = match &options.name {
        Some(n) => n.clone(),
        None => path
            .file_name()
            .and_then(|n| n.to_str())
            .map(str::to_string)
            .ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "{}: no UTF-8 file name to title the image with; pass --name",
                    path.display()
                ))
            })?,
    };
    validate_file_name(&name)?;
    Ok(name)
}

/// The `SHA256SUMS` layer over `layers`, as `sha256sum` writes it.
fn sha256sums_layer(writer: &Writer<'_>, layers: &[Descriptor]) -> Result<Descriptor> {
    let sums: String = layers
        .iter()
        .map(|l| format!("{}  {}\n", l.digest.hex(), l.title().unwrap_or_default()))
        .collect();
    let mut layer = writer.put_bytes(SHA256SUMS_MEDIA_TYPE, sums.as_bytes())?;
    layer
        .annotations
        .insert(annotation::TITLE.into(), SHA256SUMS.into());
    Ok(layer)
}

/// Stores bytes `[offset, offset + len)` of the logical file as one blob:
/// data extents read (mapped where possible), holes hashed as zeros and
/// left as holes in the blob.
#[allow(clippy::too_many_arguments)]
fn put_logical(
    writer: &Writer<'_>,
    file: &File,
    path: &Path,
    map: &SparseMap,
    offset: u64,
    len: u64,
    media_type: &str,
    progress: &dyn Progress,
) -> Result<Descriptor> {
    let mut blob = writer.blob()?;
    let tmp_path = blob.temp_path().to_path_buf();
    let end = offset + len;
    let mut at = offset;
    let extents = map.extents();
    let first = extents.partition_point(|e| e.end() <= offset);
    for e in extents[first..].iter().take_while(|e| e.offset < end) {
        let (start, stop) = (e.offset.max(offset), e.end().min(end));
        if start > at {
            blob.write_zeros(start - at)?;
            progress.advance(start - at);
        }
        let mut write_error = None;
        let r = crate::io::hash::for_each_range(file, start, stop - start, &mut |bytes| {
            if let Err(e) = io::Write::write_all(&mut blob, bytes) {
                write_error = Some(e);
                return Err(io::Error::other("write failed"));
            }
            progress.advance(bytes.len() as u64);
            Ok(())
        });
        if let Some(e) = write_error {
            return Err(Error::io("write", &tmp_path, e));
        }
        r.ctx("read", path)?;
        at = stop;
    }
    if end > at {
        blob.write_zeros(end - at)?;
        progress.advance(end - at);
    }
    blob.commit(media_type, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::digest::{Algorithm, Digest};
    use crate::io::progress::NoProgress;
    use crate::store::layout::Layout;
    use std::os::unix::fs::FileExt;

    /// Parts are byte ranges of the logical file, holes included, whatever
    /// the alignment of extents and parts.
    #[test]
    fn parts_are_the_logical_file_cut_at_fixed_offsets() -> Result<()> {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::init(dir.path().join("l"))?;
        let path = dir.path().join("disk.raw");
        let f = File::create(&path).unwrap();
        f.set_len((5 << 20) + 123).unwrap();
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8 + 1).collect();
        f.write_all_at(&data, 1_000_000).unwrap();
        f.write_all_at(&data[..5000], (5 << 20) + 100).unwrap();
        let whole = std::fs::read(&path).unwrap();
        let w = layout.writer()?;
        for part in [1 << 20, 777_777, whole.len() as u64] {
            let opts = ImageOptions::default().part_size(part);
            let m = pack(&w, &path, &opts, &NoProgress)?;
            let plan = super::super::plan(&layout, &m)?;
            assert_eq!(plan.name, "disk.raw");
            assert_eq!(plan.parts.len() as u64, (whole.len() as u64).div_ceil(part));
            let mut joined = Vec::new();
            for (p, (off, n)) in plan
                .parts
                .iter()
                .zip(crate::chunks::write::cut(whole.len() as u64, part))
            {
                let slice = &whole[off as usize..(off + n) as usize];
                assert_eq!(p.digest, Digest::of_bytes(Algorithm::Sha256, slice));
                joined.extend(layout.read_blob(p, u64::MAX)?);
            }
            assert!(joined == whole, "part size {part}");
        }
        Ok(())
    }
}
