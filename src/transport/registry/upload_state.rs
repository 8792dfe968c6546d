//! Where a chunked upload stands, kept across runs: after each chunk the
//! registry took, its upload URL and the offset are written (with the
//! publish protocol) to `upload-<KEY>-sha256-<hex>.json` in the layout's
//! private temp directory, KEY naming the registry and repository. A push
//! killed or failed midway finds it on the next run, asks the registry
//! where that upload stands, and goes on from there; a registry that no
//! longer has it (distribution drops an upload whose PATCH was cut) has
//! the blob started again. The file goes when the blob is up; gc removes
//! one older than its grace period, as it does any abandoned temp file.

use std::path::PathBuf;

use crate::io::digest::{Algorithm, Digest};
use crate::io::durable;
use crate::store::layout::Layout;

/// The saved state of one blob's upload to one repository.
#[derive(Debug)]
pub(crate) struct UploadState {
    path: PathBuf,
    tmp_dir: PathBuf,
}

/// An upload to go on with: its URL and the bytes the registry has.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Saved {
    pub location: String,
    pub offset: u64,
}

impl UploadState {
    /// The state of `digest`'s upload to `repository` of `registry`.
    pub(crate) fn new(
        layout: &Layout,
        registry: &str,
        repository: &str,
        digest: &Digest,
    ) -> UploadState {
        let key = Digest::of_bytes(
            Algorithm::Sha256,
            format!("{registry}/{repository}").as_bytes(),
        );
        let tmp_dir = layout.tmp_dir();
        UploadState {
            path: tmp_dir.join(format!(
                "upload-{}-{}-{}.json",
                &key.hex()[..16],
                digest.algorithm().name(),
                digest.hex()
            )),
            tmp_dir,
        }
    }

    /// What an earlier run saved; `None` when nothing (or something that
    /// cannot be read: it is only a hint, and the blob starts again).
    pub(crate) fn load(&self) -> Option<Saved> {
        let raw = std::fs::read(&self.path).ok()?;
        let v: serde_json::Value = serde_json::from_slice(&raw).ok()?;
        Some(Saved {
            location: v["location"].as_str()?.to_string(),
            offset: v["offset"].as_u64()?,
        })
    }

    /// Saves `location` and `offset`, durably.
    ///
    /// # Errors
    /// I/O errors writing the file.
    pub(crate) fn save(&self, location: &str, offset: u64) -> crate::Result<()> {
        let raw = serde_json::json!({ "location": location, "offset": offset }).to_string();
        durable::replace(&self.tmp_dir, &self.path, raw.as_bytes())
    }

    /// Forgets it (the blob is up, or its upload is gone).
    pub(crate) fn clear(&self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_state_round_trips_per_repository_and_bad_files_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::init(dir.path()).unwrap();
        let d = Digest::of_bytes(Algorithm::Sha256, b"blob");
        let a = UploadState::new(&layout, "r:5000", "a", &d);
        let b = UploadState::new(&layout, "r:5000", "b", &d);
        assert_eq!(a.load(), None);
        a.save("http://r:5000/v2/a/blobs/uploads/x?_state=y", 4096)
            .unwrap();
        assert_eq!(
            a.load(),
            Some(Saved {
                location: "http://r:5000/v2/a/blobs/uploads/x?_state=y".into(),
                offset: 4096
            })
        );
        assert_eq!(b.load(), None, "another repository's upload is its own");
        std::fs::write(&a.path, b"{\"location\": 3}").unwrap();
        assert_eq!(a.load(), None);
        a.clear();
        assert!(!a.path.exists());
    }
}
