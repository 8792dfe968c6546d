//! Layer 6, artifact formats: each turns files or a foreign stream into
//! artifacts in the store and back.
//!
//! - [`cocoon`]: cocoonstack VM snapshots, their tar stream, OS disk images;
//! - [`eci`]: lf-edge edge-container images (kernel, initrd, disks, config);
//! - [`oci_archive`]: an OCI layout as one tar (skopeo's `oci-archive:`);
//! - [`docker_archive`]: `docker save`'s tarball (skopeo's `docker-archive:`);
//! - [`legacy`]: legacy epoch stores (catalog.json, manifests/, blobs/).

pub mod cocoon;
pub mod docker_archive;
pub mod eci;
pub mod image;
pub mod legacy;
pub mod oci_archive;

use crate::error::Result;
use crate::model::Kind;
use crate::store::layout::Layout;
use crate::store::summary::Summary;

/// What a summarized VM artifact amounts to once unpacked: the sum of its
/// files' logical sizes (holes included) for a snapshot, the joined disk for
/// an OS image; `None` for other kinds.
///
/// # Errors
/// A snapshot or image whose config or layers do not make sense (as
/// `unpack` would report), or whose sizes add up past 64 bits.
pub fn logical_size(layout: &Layout, summary: &Summary) -> Result<Option<u64>> {
    match summary.kind {
        Kind::Snapshot => Ok(Some(
            cocoon::snapshot::plan(layout, &summary.descriptor)?.logical_size(),
        )),
        Kind::CloudImage => Ok(Some(
            cocoon::os_image::plan(layout, &summary.descriptor)?.size,
        )),
        _ => Ok(None),
    }
}
