//! Joining an OS image's disk layers back into one file, as cocoon-common's
//! `cloudimg` does.

use std::path::{Path, PathBuf};

use super::title;
use crate::chunks::restore::{ChunkRef, restore_file};
use crate::chunks::resume::Session;
use crate::error::{Error, Result};
use crate::formats::cocoon::config::is_disk_media_type;
use crate::io::progress::Progress;
use crate::io::sparse::SparseMap;
use crate::model::name::validate_file_name;
use crate::model::{Descriptor, Kind, classify, media_type as mt};
use crate::store::layout::Layout;

/// An OS image's disk layers in joining order and the file they make.
#[derive(Clone, Debug)]
pub struct ImagePlan {
    /// The joined file's name (a checked plain file name).
    pub name: String,
    /// The disk layers, sorted by title.
    pub parts: Vec<Descriptor>,
    /// The joined file's size.
    pub size: u64,
}

/// Reads an OS image manifest and plans its reassembly as cocoon-common's
/// `cloudimg` does: keep the layers with a disk media type, sort them
/// stably by title (bytewise). The file is named after the single disk
/// layer's title, or after the parts' common name with the
/// `.NN.<fmt>.part` suffix removed.
///
/// # Errors
/// Not an OS image, no disk layers, compressed disk layers, layers without
/// titles, titles that are not plain file names or not a consistent run of
/// parts.
pub fn plan(layout: &Layout, manifest: &Descriptor) -> Result<ImagePlan> {
    let bad = |reason: String| Error::InvalidDocument {
        what: format!("OS image {}", manifest.digest),
        reason,
    };
    let (_, doc) = layout.read_document(manifest)?;
    let kind = classify(&doc, Some(&manifest.media_type));
    if kind != Kind::CloudImage {
        return Err(bad(format!("it is a {kind}, not an OS image")));
    }
    let mut parts: Vec<Descriptor> = doc
        .layers
        .unwrap_or_default()
        .into_iter()
        .filter(|l| is_disk_media_type(&l.media_type))
        .collect();
    parts.sort_by(|a, b| a.title().unwrap_or("").cmp(b.title().unwrap_or("")));
    if parts.is_empty() {
        return Err(bad(format!(
            "it has no disk layers (media type {} or {}, or their .part forms)",
            mt::DISK_QCOW2,
            mt::DISK_RAW
        )));
    }
    let mut titles = Vec::with_capacity(parts.len());
    let mut size = 0u64;
    for p in &parts {
        if p.media_type.ends_with("+zstd") {
            return Err(bad(format!(
                "disk layer {} is compressed ({}); OS images are joined as stored",
                p.digest, p.media_type
            )));
        }
        titles.push(
            p.title()
                .ok_or_else(|| bad(format!("disk layer {} has no title", p.digest)))?,
        );
        size = size
            .checked_add(p.size)
            .ok_or_else(|| bad("its disk layers' sizes overflow".into()))?;
    }
    let name = if parts.len() == 1 && !parts[0].media_type.ends_with(".part") {
        titles[0].to_string()
    } else {
        title::joined_name(&titles).map_err(bad)?
    };
    validate_file_name(&name)?;
    Ok(ImagePlan { name, parts, size })
}

/// Joins an OS image's disk layers into one file in `dir` (created if
/// absent), named as [`plan`] says: every part verified against its
/// digest, written in parallel at its offset, zero blocks left as holes,
/// fsynced and renamed into place. An existing file is refused unless
/// [`UnpackOptions::force`](crate::formats::cocoon::UnpackOptions::force). Returns the file's path.
///
/// # Errors
/// As [`plan`] and [`restore_file`]; nothing is written when the
/// plan is refused.
pub fn unpack(
    layout: &Layout,
    manifest: &Descriptor,
    dir: &Path,
    options: &crate::formats::cocoon::UnpackOptions,
    progress: &dyn Progress,
) -> Result<PathBuf> {
    layout.whole_graph(
        std::slice::from_ref(manifest),
        &format!("cannot unpack OS image {}", manifest.digest),
    )?;
    let plan = plan(layout, manifest)?;
    let session = Session::begin(dir, &manifest.digest, &[plan.name.as_str()], options.force)?;
    let chunks: Vec<ChunkRef> = plan.parts.iter().cloned().map(ChunkRef::raw).collect();
    progress.begin("unpacking", plan.size);
    let out = restore_file(
        layout,
        dir,
        &plan.name,
        &SparseMap::dense(plan.size),
        &chunks,
        0o644,
        session.may_replace(&plan.name),
        progress,
    )?;
    progress.finish();
    session.finish()?;
    Ok(out)
}
