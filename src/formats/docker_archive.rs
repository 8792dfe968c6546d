//! Docker's image tarball, what `docker save` writes and `docker load`
//! reads, and skopeo's `docker-archive:` transport: read by
//! [`crate::formats::oci_archive::import_archive`] (which tells the two
//! kinds of archive apart) and written by [`DockerArchivePlan`].
//!
//! # The format
//! A tar holding `manifest.json`, an array of images
//! (`{"Config": "<hex>.json", "RepoTags": ["name:tag"], "Layers":
//! ["<hex>.tar", ...]}`; docker save before 25 names layers
//! `<id>/layer.tar`, docker save 25 and later `blobs/sha256/<hex>` beside
//! a whole OCI layout), `repositories` (`{"name": {"tag": "<top layer
//! id>"}}`, for the loader of docker before 1.10), the configs and the
//! layer tars (plain or compressed), and in older writers `<id>/json` and
//! `<id>/VERSION` per layer, `<id>/layer.tar` a symlink for a layer
//! written already (skopeo links every one to `../<hex>.tar`).
//!
//! # Import
//! The tar is read once; `manifest.json` may come last, so every regular
//! member but `repositories` and the legacy `<id>/json` and `<id>/VERSION`
//! is stored as a blob while it is hashed, and its name remembered.
//! Symlinks are remembered with their targets, resolved inside the
//! archive (an absolute target or one that climbs out is refused). An
//! archive with an `oci-layout` member is an OCI archive (its index is
//! used; `manifest.json` and `repositories` are read over); otherwise
//! `manifest.json` makes it a docker archive. Then, for each item, the
//! config must be a JSON image config with as many `rootfs.diff_ids` as
//! the item has layers; each layer is gzip
//! (`application/vnd.docker.image.rootfs.diff.tar.gzip`) or a plain tar
//! (`application/vnd.docker.image.rootfs.diff.tar`, which must hash to its
//! diffID); zstd, bzip2 and xz are refused. A Docker v2 schema 2 manifest
//! (`application/vnd.docker.distribution.manifest.v2+json`) is written in
//! the bytes skopeo generates for `docker-archive:` (compact, skopeo's
//! field order) over the config and layers as they are, byte for byte:
//! the layers' digests are the members' sha256. Each RepoTags entry
//! becomes a ref, `docker.io/library/x:t` and `docker.io/u/x:t` in
//! docker's familiar form (`x:t`, `u/x:t`); an item without tags is an
//! untagged root. Members no item names (and a failed import's blobs) are
//! unreferenced and go with the next gc. Names are checked as an OCI
//! archive's are (no `..`, no absolute path), a member given twice is
//! refused, and a name in `manifest.json` that is not a file of the
//! archive is refused naming it. On any error nothing is tagged.
//!
//! # Export
//! `manifest.json` (compact), `repositories`, then each config
//! (`<hex>.json`) and layer (`<hex>.tar`, whatever its compression) once,
//! every blob checked against its digest on the way out; the legacy
//! `<id>/` directories are not written (docker load reads manifest.json
//! since 1.10). An OCI image manifest is exported with its config and
//! layers as they are. The top layer ID of `repositories` is the chain ID
//! of the diffIDs (docker's `layer.CreateChainID`).

/// What errors name as the thing read.
pub(crate) const DOCKER_ARCHIVE: &str = "docker archive";

mod export;
pub(crate) mod import;
mod manifest;

pub use export::{DockerArchivePlan, export_docker_archive_file};
