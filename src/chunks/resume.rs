//! One unpack into one directory, resumable: a marker file says which
//! manifest is being restored there until every file is in place, so that
//! a rerun of the same unpack after a kill or an error completes it without
//! `--force`, and nothing it left behind survives.
//!
//! The marker, [`MARKER`], holds `{"manifest": DIGEST, "files": [NAME...]}`
//! and is written with the publish protocol (temp file, fsync, rename,
//! directory fsync) before the first file is created. A rerun for the same
//! manifest replaces the files it names (restored again from verified
//! blobs: a half-restored file is never trusted) and removes the temp
//! files (`.NAME.XXXXXX.part`) a killed run left; an unpack of another
//! manifest into that directory is refused unless forced. The marker is
//! removed, and the directory fsynced, once every file is in place.

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, IoContext, Result};
use crate::io::digest::Digest;
use crate::io::durable;

/// The file an unfinished unpack leaves in its directory.
pub const MARKER: &str = ".epoch-store-unpack.json";

/// Largest marker read.
const MARKER_LIMIT: u64 = 4 << 20;

#[derive(Serialize, Deserialize)]
struct Marker {
    manifest: String,
    files: Vec<String>,
}

/// An unpack under way in one directory.
#[derive(Debug)]
pub(crate) struct Session {
    dir: PathBuf,
    /// Names that may be replaced: they existed when the unpack began and
    /// `force` was given, or a run of this same unpack restored them.
    replace: BTreeSet<String>,
}

impl Session {
    /// Starts (or resumes) restoring `names` of `manifest` into `dir`,
    /// created if absent. Refuses, before anything is written: an
    /// existing file among `names` (unless `force`, or it is left by an
    /// unfinished unpack of the same manifest); an unfinished unpack of
    /// another manifest (unless `force`). Then removes the temp files an
    /// earlier run left for these names, and writes the marker.
    ///
    /// # Errors
    /// The refusals above, with what to do; I/O errors.
    pub(crate) fn begin(
        dir: &Path,
        manifest: &Digest,
        names: &[&str],
        force: bool,
    ) -> Result<Session> {
        durable::create_dir_durable(dir)?;
        let marker_path = dir.join(MARKER);
        let previous = read_marker(&marker_path)?;
        let resume = previous
            .as_ref()
            .is_some_and(|m| m.manifest == manifest.to_string());
        if let Some(prev) = &previous
            && !resume
            && !force
        {
            return Err(Error::InvalidArgument(format!(
                "{} holds an unfinished unpack of {} (it was killed or failed: see {}); finish it \
                 with `epoch-store unpack {} {}`, or pass --force to unpack this one over it",
                dir.display(),
                prev.manifest,
                marker_path.display(),
                prev.manifest,
                dir.display()
            )));
        }
        let mut replace = BTreeSet::new();
        for name in names {
            let path = dir.join(name);
            if fs::symlink_metadata(&path).is_ok() {
                if !(force || resume) {
                    return Err(Error::AlreadyExists {
                        path,
                        advice: "unpack into an empty directory or pass --force",
                    });
                }
                replace.insert(name.to_string());
            }
        }
        let mut ours: BTreeSet<&str> = names.iter().copied().collect();
        if let Some(prev) = &previous {
            ours.extend(prev.files.iter().map(String::as_str));
        }
        remove_temp_files(dir, &ours)?;
        let marker = Marker {
            manifest: manifest.to_string(),
            files: names.iter().map(|n| n.to_string()).collect(),
        };
        let bytes = serde_json::to_vec(&marker).expect("a marker always serializes");
        durable::write_file_replacing(&marker_path, |w| {
            w.write_all(&bytes).ctx("write", &marker_path)
        })?;
        Ok(Session {
            dir: dir.to_path_buf(),
            replace,
        })
    }

    /// Whether `name` may be replaced (rather than published without
    /// clobbering).
    pub(crate) fn may_replace(&self, name: &str) -> bool {
        self.replace.contains(name)
    }

    /// Every file is in place: removes the marker and makes that durable.
    ///
    /// # Errors
    /// I/O errors removing the marker or syncing the directory.
    pub(crate) fn finish(self) -> Result<()> {
        let marker = self.dir.join(MARKER);
        match fs::remove_file(&marker) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("remove", &marker, e)),
        }
        durable::sync_dir(&self.dir)
    }
}

/// The marker of an unfinished unpack in the directory, if any. A marker
/// that is not ours to read (a directory, a link, not JSON) is refused.
fn read_marker(path: &Path) -> Result<Option<Marker>> {
    let raw = match crate::io::input::read_capped(path, MARKER_LIMIT, MARKER) {
        Ok(raw) => raw,
        Err(Error::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    serde_json::from_slice(&raw)
        .map(Some)
        .map_err(|e| Error::InvalidDocument {
            what: path.display().to_string(),
            reason: format!(
                "it is not the marker of an unfinished unpack ({e}); remove it and run unpack again"
            ),
        })
}

/// Removes the temp files (`.NAME.XXXXXX.part`, as [`restore_file`](super::restore::restore_file)
/// names them) that a killed run left for `names`. Only regular files with
/// exactly that shape are touched.
fn remove_temp_files(dir: &Path, names: &BTreeSet<&str>) -> Result<()> {
    let mut removed = false;
    for entry in fs::read_dir(dir).ctx("list directory", dir)? {
        let entry = entry.ctx("list directory", dir)?;
        let file_name = entry.file_name();
        let Some(file_name) = file_name.to_str() else {
            continue;
        };
        if !names.iter().any(|n| is_temp_of(file_name, n)) {
            continue;
        }
        if !entry.file_type().ctx("stat", entry.path())?.is_file() {
            continue;
        }
        match fs::remove_file(entry.path()) {
            Ok(()) => removed = true,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("remove", entry.path(), e)),
        }
    }
    if removed {
        durable::sync_dir(dir)?;
    }
    Ok(())
}

/// Whether `file_name` is a temp file of `name`: `.NAME.` + 6 letters or
/// digits + `.part`.
pub(crate) fn is_temp_of(file_name: &str, name: &str) -> bool {
    let Some(rest) = file_name
        .strip_prefix('.')
        .and_then(|r| r.strip_prefix(name))
        .and_then(|r| r.strip_prefix('.'))
        .and_then(|r| r.strip_suffix(".part"))
    else {
        return false;
    };
    rest.len() == durable::BESIDE_RANDOM_LEN && rest.bytes().all(|b| b.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names_are_recognised_exactly() {
        assert!(is_temp_of(".memory-ranges.aB3xY9.part", "memory-ranges"));
        assert!(!is_temp_of(".memory-ranges.aB3xY.part", "memory-ranges"));
        assert!(!is_temp_of("memory-ranges.aB3xY9.part", "memory-ranges"));
        assert!(!is_temp_of(".memory-ranges.aB3-Y9.part", "memory-ranges"));
        assert!(!is_temp_of(".memory.aB3xY9.part", "memory-ranges"));
        assert!(!is_temp_of(".config.json.aB3xY9.part", "memory-ranges"));
    }
}
