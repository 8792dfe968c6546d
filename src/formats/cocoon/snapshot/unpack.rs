//! Restoring a snapshot's files into a directory, resumably.

use std::path::{Path, PathBuf};

use super::plan::plan;
use crate::chunks::restore::restore_file;
use crate::error::Result;
use crate::io::progress::Progress;
use crate::model::Descriptor;
use crate::store::layout::Layout;

/// Restores a snapshot's files into `dir` (created if absent): every byte
/// verified, holes restored, modes set, each file fsynced and renamed into
/// place. Existing files are refused unless [`UnpackOptions::force`](crate::formats::cocoon::UnpackOptions::force). Resumable: a rerun
/// after a kill or an error completes it without it, restoring every
/// file again and removing what the failed run left (see
/// [`crate::chunks::restore::MARKER`]).
///
/// # Errors
/// As [`plan`] and [`restore_file`].
pub fn unpack(
    layout: &Layout,
    manifest: &Descriptor,
    dir: &Path,
    options: &crate::formats::cocoon::UnpackOptions,
    progress: &dyn Progress,
) -> Result<Vec<PathBuf>> {
    layout.whole_graph(
        std::slice::from_ref(manifest),
        &format!("cannot unpack snapshot {}", manifest.digest),
    )?;
    let plan = plan(layout, manifest)?;
    let names: Vec<&str> = plan.files.iter().map(|f| f.name.as_str()).collect();
    let session =
        crate::chunks::resume::Session::begin(dir, &manifest.digest, &names, options.force)?;
    progress.begin("unpacking", plan.stored_len());
    let mut out = Vec::new();
    for f in &plan.files {
        let replace = session.may_replace(&f.name);
        out.push(restore_file(
            layout, dir, &f.name, &f.map, &f.chunks, f.mode, replace, progress,
        )?);
    }
    progress.finish();
    session.finish()?;
    Ok(out)
}
