//! The legacy epoch store (releases up to v0.1.5): a directory copied out
//! of its bucket becomes cocoonstack snapshot artifacts in the layout.
//!
//! # The legacy format
//! ```text
//! catalog.json                     {"repositories": {NAME: {"tags": {TAG: "manifests/NAME/TAG.json"}}}}
//! manifests/NAME/TAG.json          one snapshot (schemaVersion 1)
//! manifests/NAME/_digests/*.json   by-digest copies of the same manifests (later releases): ignored
//! blobs/sha256/HEX                 each file whole, named by the SHA-256 of its content
//! ```
//! A manifest is `{schemaVersion: 1, name, tag, snapshotId, image,
//! imageBlobIDs: {hex: objectKey}, cpu, memory, storage, nics, layers:
//! [{digest: HEX, size, filename, mediaType}], baseImages: [same], totalSize,
//! createdAt, pushedAt}`.
//!
//! # How it maps
//! - `manifests/NAME/TAG.json` becomes the ref `PREFIX` + `NAME:TAG`.
//! - Each layer is one file of the snapshot, named by its `filename`, with
//!   the blob's bytes; it is stored exactly as [`crate::formats::cocoon::snapshot::pack`]
//!   stores a file of that name (media type by name, v2 chunks, holes of a
//!   sparse blob left out and recorded as its sparse map). Every blob is
//!   hashed while it is copied and must match its name and size.
//! - `snapshotId`, `image`, `cpu`, `memory`, `storage`, `nics` and
//!   `createdAt` fill the config fields of the same names; `imageBlobIds`
//!   gets the keys of `imageBlobIDs` and the ids of the `baseImages` (their
//!   file names without `.qcow2`/`.raw`, as epoch's pull derived them).
//! - The legacy manifest itself is kept whole in the config, under
//!   `epochLegacy.manifest`, with its path (`epochLegacy.path`) and SHA-256
//!   (`epochLegacy.manifestDigest`): `imageBlobIDs` with its object keys,
//!   `baseImages`, `totalSize`, `pushedAt`, the original layer digests and
//!   media types, and any field this version does not know.
//! - `baseImages` are not files of the snapshot: epoch's pull put them in
//!   cocoon's cloud-image blob directory, not in the snapshot directory,
//!   and cocoonstack's snapshot artifacts never carry them (the config's
//!   `image`/`imageBlobIds` name them). They are recorded (above), not
//!   copied; the report lists them with whether their blob is in the store,
//!   so they can be packed as OS images (`epoch-store pack image`).
//! - No mode is recorded (the legacy store has none): readers use 0640.
//!
//! # What is not converted
//! A manifest is reported and skipped, the others converted, when: it is
//! not JSON or not an object; its `schemaVersion` is not 1 (2 is an OCI
//! manifest pushed through epoch's registry API); its path, name or tag is
//! not a plain `manifests/NAME/TAG.json` agreeing with its fields, or does
//! not make a valid ref; it has no layers; a filename is not a plain file
//! name (`../x`, `/abs`, `a/b`, empty), is `snapshot.json` (cocoon's
//! envelope) or appears twice; a layer's digest is not 64 lowercase hex; a
//! blob is missing, not a regular file, of another size, or hashes to
//! another digest; a blob changes while it is imported.

use std::path::PathBuf;

use serde::Serialize;

use crate::formats::cocoon::config::SnapshotConfig;
use crate::formats::cocoon::snapshot::PackOptions;
use crate::io::digest::Digest;

mod import;
mod plan;
#[cfg(test)]
mod tests;

pub use import::{import_legacy, preview_legacy};
pub use plan::plan_legacy;

/// The key of the legacy record in the snapshot config.
pub const CONFIG_KEY: &str = "epochLegacy";

/// What [`plan_legacy`] found: the manifests that can be converted and the
/// ones that cannot, with reasons.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LegacyPlan {
    /// The legacy store's directory.
    pub dir: PathBuf,
    /// Manifests that can be converted, by path.
    pub manifests: Vec<LegacyManifest>,
    /// Manifests that cannot, with the reason.
    pub skipped: Vec<Skipped>,
    /// Things worth knowing that stop nothing (a damaged `catalog.json`,
    /// ignored `_digests/` copies, ...).
    pub notes: Vec<String>,
}

/// A legacy manifest that can be converted.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LegacyManifest {
    /// Its path in the store, `manifests/NAME/TAG.json`.
    pub path: String,
    /// The SHA-256 of its bytes.
    pub digest: Digest,
    /// Repository name.
    pub name: String,
    /// Tag.
    pub tag: String,
    /// Its files, in manifest order.
    pub files: Vec<LegacyFile>,
    /// Its base images, recorded in the config, not copied.
    pub base_images: Vec<BaseImage>,
    /// The config the snapshot gets (before `files`, `schemaVersion`).
    #[serde(skip)]
    pub config: SnapshotConfig,
}

/// One file of a legacy snapshot.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LegacyFile {
    /// Plain file name.
    pub name: String,
    /// The blob's digest (its name in the store).
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
    /// The blob file.
    pub path: PathBuf,
}

/// A base image a legacy manifest names (recorded, not copied).
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BaseImage {
    /// Its file name in cocoon's cloud-image blob directory (`HEX.qcow2`).
    pub filename: String,
    /// Its digest as the manifest gives it.
    pub digest: String,
    /// Its size as the manifest gives it.
    pub size: i64,
    /// Its blob in the store, when present (to pack it as an OS image).
    pub blob: Option<PathBuf>,
}

/// A manifest (or catalog entry) that is not converted.
#[derive(Clone, Debug, Serialize)]
pub struct Skipped {
    /// Its path in the store (`manifests/NAME/TAG.json`).
    pub manifest: String,
    /// Why.
    pub reason: String,
}

/// How to import.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct LegacyOptions {
    /// Prepended to every `NAME:TAG` to make the ref.
    pub ref_prefix: String,
    /// Replace refs that exist and are not imports of the same manifest.
    pub force: bool,
    /// Format, chunking, compression (v2, 512 MiB chunks by default).
    pub pack: PackOptions,
}

impl LegacyOptions {
    /// Sets the ref prefix.
    pub fn ref_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.ref_prefix = prefix.into();
        self
    }
    /// Replaces refs that exist.
    pub fn force(mut self, force: bool) -> Self {
        self.force = force;
        self
    }
    /// Sets how snapshots are laid out.
    pub fn pack(mut self, pack: PackOptions) -> Self {
        self.pack = pack;
        self
    }
}

/// One converted manifest.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Converted {
    /// The legacy manifest's path.
    pub manifest: String,
    /// The ref it got.
    #[serde(rename = "ref")]
    pub ref_name: String,
    /// The snapshot manifest's digest (`None` in a dry run).
    pub digest: Option<Digest>,
    /// Its file names.
    pub files: Vec<String>,
    /// Bytes of its files.
    pub bytes: u64,
    /// The ref already pointed at an import of this same legacy manifest;
    /// nothing was copied.
    pub unchanged: bool,
    /// Base images it names, not copied.
    pub base_images: Vec<BaseImage>,
}

/// What [`import_legacy`] did.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LegacyReport {
    /// Manifests converted (or, in a dry run, that would be).
    pub converted: Vec<Converted>,
    /// Manifests not converted, with the reason.
    pub skipped: Vec<Skipped>,
    /// Notes from the plan.
    pub notes: Vec<String>,
}

impl LegacyReport {
    /// Whether every manifest was converted.
    pub fn is_complete(&self) -> bool {
        self.skipped.is_empty()
    }
}
