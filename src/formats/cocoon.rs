//! cocoonstack's artifacts, as cocoon-common writes and reads them
//! (`docs/cocoon-snapshot-format.md`):
//!
//! - [`config`]: the snapshot config blob and file-name conventions;
//! - [`snapshot`]: VM snapshot directories packed into and unpacked from
//!   the layout;
//! - [`tar`] and [`stream`]: cocoon's `snapshot export` tar stream, its
//!   records, and its import into and export from the layout;
//! - [`os_image`]: OS disk images split into parts.

use crate::error::{Error, Result};
use crate::io::digest::Digest;
use crate::model::platform::{Choice, PlatformSpec, choose, describe};
use crate::model::{Descriptor, Kind};
use crate::store::layout::Layout;

pub mod config;
pub mod os_image;
pub mod snapshot;
pub mod stream;
pub mod tar;

/// How [`snapshot::unpack`] and [`os_image::unpack`] treat the target.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct UnpackOptions {
    /// Replace files already in the target directory (default: refuse
    /// them, unless a killed unpack of the same manifest left them).
    pub force: bool,
}

impl UnpackOptions {
    /// Sets [`UnpackOptions::force`].
    pub fn force(mut self, force: bool) -> Self {
        self.force = force;
        self
    }
}

/// What [`follow_index`] resolved a ref to.
#[derive(Clone, Debug)]
pub struct Followed {
    /// The manifest to read: the ref's own, or the index entry chosen. An
    /// entry keeps the index's ref name (in memory only), so that it is
    /// named after the ref the user gave, as cocoon-common names a pull.
    pub manifest: Descriptor,
    /// Set when the manifest came from an index: the index's digest and
    /// the platform of the entry taken.
    pub via_index: Option<(Digest, String)>,
    /// Set when no platform was asked for, the index has no linux/amd64
    /// entry, and another was taken as cocoon-common does: what to tell the
    /// user.
    pub fallback: Option<String>,
}

/// Follows an index to the entry a cocoon artifact is pulled from, as
/// cocoon-common's pull does (`snapshot/pull.go:Stream`, one level): with
/// `wanted`, that platform's entry; without, linux/amd64, else the first
/// entry with a known architecture. Anything that is not an index is
/// returned as it is.
///
/// # Errors
/// [`Error::InvalidDocument`] for an index with no such entry, naming the
/// platforms it has; the layout's read errors.
pub fn follow_index(
    layout: &Layout,
    desc: &Descriptor,
    wanted: Option<&PlatformSpec>,
) -> Result<Followed> {
    let (_, doc) = layout.read_document(desc)?;
    if crate::model::classify(&doc, Some(&desc.media_type)) != Kind::ImageIndex {
        return Ok(Followed {
            manifest: desc.clone(),
            via_index: None,
            fallback: None,
        });
    }
    let entries = doc.manifests.unwrap_or_default();
    let Some(choice) = choose(&entries, wanted) else {
        let have: Vec<String> = entries
            .iter()
            .map(|e| {
                e.platform
                    .as_ref()
                    .map_or_else(|| "no platform".into(), describe)
            })
            .collect();
        return Err(Error::InvalidDocument {
            what: format!("index {}", desc.digest),
            reason: format!(
                "it has no entry for {} (it has: {}); pass --platform OS/ARCH to choose one",
                wanted.map_or_else(
                    || "linux/amd64 or any known architecture".into(),
                    |w| w.to_string()
                ),
                if have.is_empty() {
                    "nothing".into()
                } else {
                    have.join(", ")
                }
            ),
        });
    };
    let (entry, fell_back) = match choice {
        Choice::Match(e) => (e, false),
        Choice::Fallback(e) => (e, true),
    };
    let platform = entry.platform.as_ref().map_or_else(String::new, describe);
    let mut manifest = entry.clone();
    if let Some(r) = desc.ref_name() {
        manifest
            .annotations
            .insert(crate::model::annotation::REF_NAME.into(), r.into());
    }
    Ok(Followed {
        manifest,
        via_index: Some((desc.digest.clone(), platform.clone())),
        fallback: fell_back.then(|| {
            format!(
                "index {} has no linux/amd64 entry; took {platform} ({}), as cocoon-common does; \
                 pass --platform to choose another",
                desc.digest, entry.digest
            )
        }),
    })
}
