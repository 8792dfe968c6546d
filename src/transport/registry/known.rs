//! Blobs known to be in some repository of one registry (pushed there, or
//! found there by a HEAD), so that a push to another repository mounts
//! them (`mount` + `from`) instead of sending them again: within one run
//! (`push --all`), and across runs through a small file in the layout's
//! private directory, `registry-blobs-<KEY>.json` (KEY naming the
//! registry). The file is a hint: a mount the registry refuses (the
//! repository gone, no pull scope on it) turns into an upload, and a file
//! that cannot be read or written is ignored.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;

use crate::io::digest::{Algorithm, Digest};
use crate::io::durable;
use crate::store::layout::Layout;

/// Entries kept in the file at most (the most recent run's win).
const MAX_KEPT: usize = 100_000;

/// Blobs known to be in some repository of one registry.
#[derive(Debug, Default)]
pub struct KnownBlobs {
    blobs: Mutex<HashMap<Digest, String>>,
    /// The file they are kept in, and the temp directory to write it from.
    file: Option<(PathBuf, PathBuf)>,
}

impl KnownBlobs {
    /// What earlier pushes from `layout` to `registry` left known (none,
    /// where there is no such file or it cannot be read).
    pub fn in_layout(layout: &Layout, registry: &str) -> KnownBlobs {
        let key = Digest::of_bytes(Algorithm::Sha256, registry.as_bytes());
        let path = layout
            .private_dir()
            .join(format!("registry-blobs-{}.json", &key.hex()[..16]));
        let blobs = std::fs::read(&path)
            .ok()
            .and_then(|raw| serde_json::from_slice::<serde_json::Value>(&raw).ok())
            .and_then(|v| {
                let map = v.get("blobs")?.as_object()?.clone();
                Some(
                    map.into_iter()
                        .filter_map(|(d, r)| {
                            Some((Digest::parse(&d).ok()?, r.as_str()?.to_string()))
                        })
                        .collect(),
                )
            })
            .unwrap_or_default();
        KnownBlobs {
            blobs: Mutex::new(blobs),
            file: Some((path, layout.tmp_dir())),
        }
    }

    /// Keeps what is known for the next run (with the publish protocol);
    /// a layout that cannot be written (a read-only stick) keeps nothing.
    pub fn save(&self) {
        let Some((path, tmp)) = &self.file else {
            return;
        };
        let blobs = self.blobs.lock().unwrap_or_else(|p| p.into_inner());
        let kept: serde_json::Map<String, serde_json::Value> = blobs
            .iter()
            .take(MAX_KEPT)
            .map(|(d, r)| (d.to_string(), serde_json::Value::String(r.clone())))
            .collect();
        let raw = serde_json::json!({ "blobs": kept }).to_string();
        let _ = durable::replace(tmp, path, raw.as_bytes());
    }

    pub(crate) fn repository_of(&self, digest: &Digest) -> Option<String> {
        self.blobs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(digest)
            .cloned()
    }

    /// `digest` is in `repository` (the latest repository wins: the one
    /// most likely still there).
    pub(crate) fn add(&self, digest: &Digest, repository: &str) {
        self.blobs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(digest.clone(), repository.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_blobs_outlive_the_run_per_registry() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::init(dir.path()).unwrap();
        let d = Digest::of_bytes(Algorithm::Sha256, b"layer");
        let k = KnownBlobs::in_layout(&layout, "r:5000");
        assert_eq!(k.repository_of(&d), None);
        k.add(&d, "team/a");
        k.save();
        let again = KnownBlobs::in_layout(&layout, "r:5000");
        assert_eq!(again.repository_of(&d).as_deref(), Some("team/a"));
        assert_eq!(
            KnownBlobs::in_layout(&layout, "other:5000").repository_of(&d),
            None
        );
    }
}
