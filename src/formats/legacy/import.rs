//! Converting a planned legacy store's manifests into snapshots.

use std::fs::{self, File};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use rayon::prelude::*;
use serde_json::Value;

use super::{
    CONFIG_KEY, Converted, LegacyManifest, LegacyOptions, LegacyPlan, LegacyReport, Skipped,
};
use crate::error::{Error, Result};
use crate::formats::cocoon::snapshot::{FileSource, store_files, write_snapshot_manifest};
use crate::io::digest::{Algorithm, Digest};
use crate::io::progress::{NoProgress, Progress};
use crate::io::sparse::SparseMap;
use crate::model::Descriptor;
use crate::model::name::RefName;
use crate::store::layout::Layout;
use crate::store::writer::Writer;

/// Imports the plan's manifests into the layout, one after the other, each
/// tagged as soon as it is stored: every blob is opened without following
/// symlinks, its size checked, and its whole content hashed (on another
/// thread, while its chunks are stored as `pack snapshot` stores them) and
/// compared to its name; the file must not change meanwhile. A manifest
/// with a bad blob is skipped (blobs it stored stay unreferenced until gc).
/// A ref that exists is left alone, unless it already is an import of the
/// same legacy manifest (then it is reported `unchanged`) or
/// [`LegacyOptions::force`] is set. `progress` sees each manifest's stored
/// bytes.
///
/// # Errors
/// Bad options, and errors writing the layout (these stop everything:
/// manifests tagged before stay). Problems with a manifest's blobs are
/// [`LegacyReport::skipped`].
pub fn import_legacy(
    writer: &Writer<'_>,
    plan: &LegacyPlan,
    options: &LegacyOptions,
    progress: &dyn Progress,
) -> Result<LegacyReport> {
    options.pack.check()?;
    let mut report = empty_report(plan);
    for m in &plan.manifests {
        let ref_name = ref_for(options, m);
        let mut entry = converted(m, &ref_name);
        match verdict(Some(writer.layout()), &ref_name, m, options.force)? {
            Verdict::Convert => {}
            Verdict::Unchanged(d) => {
                entry.digest = Some(d);
                entry.unchanged = true;
                report.converted.push(entry);
                continue;
            }
            Verdict::Skip(reason) => {
                report.skipped.push(skipped(m, reason));
                continue;
            }
        }
        let manifest = match convert(writer, plan, m, options, progress)? {
            Ok(d) => d,
            Err(reason) => {
                report.skipped.push(skipped(m, reason));
                continue;
            }
        };
        let force = options.force;
        let clash = writer.update_index(|index| {
            if let Some(old) = index.find(&ref_name)?
                && old.digest != manifest.digest
                && !force
            {
                return Ok(Some(old.digest.clone()));
            }
            index.set_ref(&RefName::new(ref_name.clone())?, &manifest);
            Ok(None)
        })?;
        if let Some(d) = clash {
            report.skipped.push(skipped(
                m,
                format!("the ref {ref_name} was set to {d} meanwhile; pass --force to replace it"),
            ));
            continue;
        }
        entry.digest = Some(manifest.digest);
        report.converted.push(entry);
    }
    Ok(report)
}

/// What a dry run reports: the plan as a report, with the refs that exist
/// in `layout` (if given) judged as [`import_legacy`] would.
///
/// # Errors
/// Errors reading the layout's `index.json` or an existing ref's config.
pub fn preview_legacy(
    layout: Option<&Layout>,
    plan: &LegacyPlan,
    options: &LegacyOptions,
) -> Result<LegacyReport> {
    let mut report = empty_report(plan);
    for m in &plan.manifests {
        let ref_name = ref_for(options, m);
        let mut entry = converted(m, &ref_name);
        match verdict(layout, &ref_name, m, options.force)? {
            Verdict::Convert => {}
            Verdict::Unchanged(d) => {
                entry.digest = Some(d);
                entry.unchanged = true;
            }
            Verdict::Skip(reason) => {
                report.skipped.push(skipped(m, reason));
                continue;
            }
        }
        report.converted.push(entry);
    }
    Ok(report)
}

/// A report of the plan's skipped manifests and notes, nothing converted yet.
fn empty_report(plan: &LegacyPlan) -> LegacyReport {
    LegacyReport {
        skipped: plan.skipped.clone(),
        notes: plan.notes.clone(),
        ..LegacyReport::default()
    }
}

/// The ref a manifest gets: the prefix, then `NAME:TAG`.
fn ref_for(options: &LegacyOptions, m: &LegacyManifest) -> String {
    format!("{}{}:{}", options.ref_prefix, m.name, m.tag)
}

fn converted(m: &LegacyManifest, ref_name: &str) -> Converted {
    Converted {
        manifest: m.path.clone(),
        ref_name: ref_name.to_string(),
        digest: None,
        files: m.files.iter().map(|f| f.name.clone()).collect(),
        bytes: m.files.iter().map(|f| f.size).sum(),
        unchanged: false,
        base_images: m.base_images.clone(),
    }
}

fn skipped(m: &LegacyManifest, reason: String) -> Skipped {
    Skipped {
        manifest: m.path.clone(),
        reason,
    }
}

enum Existing {
    None,
    /// An import of the same legacy manifest.
    Same(Digest),
    Other(Digest),
}

fn existing(layout: &Layout, ref_name: &str, m: &LegacyManifest) -> Result<Existing> {
    let index = layout.read_index()?;
    let Some(desc) = index.find(ref_name)? else {
        return Ok(Existing::None);
    };
    let same = crate::formats::cocoon::snapshot::plan(layout, desc).is_ok_and(|p| {
        p.config
            .extra
            .get(CONFIG_KEY)
            .and_then(|v| v.get("manifestDigest"))
            .and_then(Value::as_str)
            == Some(m.digest.to_string().as_str())
    });
    Ok(if same {
        Existing::Same(desc.digest.clone())
    } else {
        Existing::Other(desc.digest.clone())
    })
}

/// What becomes of a manifest before anything is copied, judged alike by
/// [`import_legacy`] and [`preview_legacy`].
enum Verdict {
    /// Convert it: its ref is free, or is to be replaced.
    Convert,
    /// Its ref already points at an import of it: nothing to copy.
    Unchanged(Digest),
    /// Skip it, for this reason.
    Skip(String),
}

/// Judges `m`, to be tagged `ref_name`, against the refs in `layout` (as if
/// it had none when `None`).
fn verdict(
    layout: Option<&Layout>,
    ref_name: &str,
    m: &LegacyManifest,
    force: bool,
) -> Result<Verdict> {
    if let Err(e) = crate::validate_ref(ref_name) {
        return Ok(Verdict::Skip(e.to_string()));
    }
    let Some(layout) = layout else {
        return Ok(Verdict::Convert);
    };
    Ok(match existing(layout, ref_name, m)? {
        Existing::Same(d) if !force => Verdict::Unchanged(d),
        Existing::Other(d) if !force => Verdict::Skip(format!(
            "the ref {ref_name} exists ({d}) and is not an import of this manifest; \
             pass --force to replace it, or --ref-prefix to import beside it"
        )),
        _ => Verdict::Convert,
    })
}

/// An open blob and what it looked like when opened.
struct Opened {
    file: File,
    map: SparseMap,
    stamp: (u64, i64, i64, i64, i64),
}

fn stamp(md: &fs::Metadata) -> (u64, i64, i64, i64, i64) {
    (
        md.len(),
        md.mtime(),
        md.mtime_nsec(),
        md.ctime(),
        md.ctime_nsec(),
    )
}

/// Stores one manifest's files and writes its snapshot manifest. The outer
/// error stops everything (the layout cannot be written); the inner one is
/// why this manifest is skipped.
fn convert(
    writer: &Writer<'_>,
    plan: &LegacyPlan,
    m: &LegacyManifest,
    options: &LegacyOptions,
    progress: &dyn Progress,
) -> Result<std::result::Result<Descriptor, String>> {
    let opened = match open_files(m) {
        Ok(o) => o,
        Err(why) => return Ok(Err(why)),
    };
    let sources: Vec<FileSource<'_>> = m
        .files
        .iter()
        .zip(&opened)
        .map(|(f, o)| FileSource {
            name: &f.name,
            path: &f.path,
            file: &o.file,
            map: &o.map,
            mode: 0,
        })
        .collect();
    progress.begin("importing", opened.iter().map(|o| o.map.stored_len()).sum());
    let (hashes, stored) = rayon::join(
        || {
            m.files
                .par_iter()
                .zip(&opened)
                .map(|(f, o)| {
                    crate::io::hash::hash_file(&o.file, f.size, Algorithm::Sha256, &NoProgress)
                })
                .collect::<Vec<_>>()
        },
        || store_files(writer, &options.pack, &sources, progress),
    );
    progress.finish();
    let stored = match stored {
        Ok(s) => s,
        Err(e) if reads_source(&e, &plan.dir) => return Ok(Err(e.to_string())),
        Err(e) => return Err(e),
    };
    if let Err(why) = check_unchanged(m, &opened, hashes) {
        return Ok(Err(why));
    }
    write_snapshot_manifest(writer, &options.pack, m.config.clone(), &stored).map(Ok)
}

/// Opens a manifest's blobs, each a regular file of the size the manifest
/// gives; `Err` says why the manifest is skipped.
fn open_files(m: &LegacyManifest) -> std::result::Result<Vec<Opened>, String> {
    let mut opened = Vec::new();
    for f in &m.files {
        let (file, md) = match crate::io::input::open_regular(&f.path) {
            Ok(x) => x,
            Err(e) => return Err(format!("{}: {e}", f.name)),
        };
        if md.len() != f.size {
            return Err(format!(
                "{}: size mismatch: the manifest says {} bytes, the blob has {}",
                f.name,
                f.size,
                md.len()
            ));
        }
        let map = match SparseMap::of_file(&file) {
            Ok(map) => map,
            Err(e) => {
                return Err(format!(
                    "{}: cannot find the data extents of {}: {e}",
                    f.name,
                    f.path.display()
                ));
            }
        };
        opened.push(Opened {
            file,
            map,
            stamp: stamp(&md),
        });
    }
    Ok(opened)
}

/// Checks what was stored: each blob hashed to its digest and did not
/// change while it was read; `Err` says why the manifest is skipped.
fn check_unchanged(
    m: &LegacyManifest,
    opened: &[Opened],
    hashes: Vec<std::io::Result<crate::io::digest::Digest>>,
) -> std::result::Result<(), String> {
    for ((f, o), hash) in m.files.iter().zip(opened).zip(hashes) {
        let found = match hash {
            Ok(d) => d,
            Err(e) => return Err(format!("{}: read {}: {e}", f.name, f.path.display())),
        };
        if found != f.digest {
            return Err(format!(
                "{}: digest mismatch: blobs/sha256/{} hashes to {found}; the blob is damaged",
                f.name,
                f.digest.hex()
            ));
        }
        let after = match o.file.metadata() {
            Ok(md) => md,
            Err(e) => return Err(format!("{}: stat {}: {e}", f.name, f.path.display())),
        };
        if stamp(&after) != o.stamp {
            return Err(format!(
                "{}: {} changed while it was imported; run the import again",
                f.name,
                f.path.display()
            ));
        }
    }
    Ok(())
}

/// Whether a pack error is about reading a source blob (skip the manifest)
/// rather than writing the layout (stop).
fn reads_source(e: &Error, dir: &Path) -> bool {
    match e {
        Error::Io { path, .. } => path.starts_with(dir),
        Error::InvalidArgument(_) => true, // the blob is shorter than its map
        _ => false,
    }
}
