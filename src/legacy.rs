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
//!   the blob's bytes; it is stored exactly as [`crate::snapshot::pack_dir`]
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

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::digest::{Algorithm, Digest};
use crate::durable;
use crate::error::{Error, IoContext, Result};
use crate::layout::{DOCUMENT_LIMIT, Layout};
use crate::model::{Descriptor, SnapshotConfig};
use crate::pack::{Source, put_sources};
use crate::progress::{NoProgress, Progress};
use crate::snapshot::{PackOptions, StoredFile, layer_media_type, write_snapshot_manifest};
use crate::sparse::SparseMap;
use crate::writer::Writer;

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

/// The legacy manifest's fields this module reads; the rest is kept as JSON.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawManifest {
    #[serde(default)]
    name: String,
    #[serde(default)]
    tag: String,
    #[serde(default)]
    snapshot_id: String,
    #[serde(default)]
    image: String,
    #[serde(default, rename = "imageBlobIDs")]
    image_blob_ids: Option<BTreeMap<String, Value>>,
    #[serde(default)]
    cpu: i64,
    #[serde(default)]
    memory: i64,
    #[serde(default)]
    storage: i64,
    #[serde(default)]
    nics: i64,
    #[serde(default)]
    layers: Option<Vec<RawLayer>>,
    #[serde(default)]
    base_images: Option<Vec<RawLayer>>,
    #[serde(default)]
    created_at: Option<String>,
}

#[derive(Deserialize)]
struct RawLayer {
    #[serde(default)]
    digest: String,
    #[serde(default)]
    size: i64,
    #[serde(default)]
    filename: String,
}

/// Reads a legacy store: `catalog.json`, every `manifests/NAME/TAG.json`,
/// and the presence, type and size of every blob they name (contents are
/// hashed only by [`import_legacy`]). Reads nothing outside `dir` and
/// follows no symlink.
///
/// # Errors
/// `dir` is not a directory, or has neither `catalog.json` nor a
/// `manifests/` directory (not a legacy store); `manifests/` cannot be
/// listed. Problems with single manifests are [`LegacyPlan::skipped`].
pub fn plan_legacy(dir: &Path) -> Result<LegacyPlan> {
    let md = fs::metadata(dir).ctx("stat", dir)?;
    let not_legacy = |why: &str| {
        Error::InvalidArgument(format!(
            "{} is not a legacy epoch store: {why}; give the directory copied out of the \
             bucket, the one holding catalog.json, manifests/ and blobs/",
            dir.display()
        ))
    };
    if !md.is_dir() {
        return Err(not_legacy("it is not a directory"));
    }
    let manifests_dir = dir.join("manifests");
    let catalog_path = dir.join("catalog.json");
    let has_manifests = fs::symlink_metadata(&manifests_dir).is_ok_and(|m| m.is_dir());
    let has_catalog = fs::symlink_metadata(&catalog_path).is_ok();
    if !has_manifests && !has_catalog {
        return Err(not_legacy(
            "it has neither catalog.json nor a manifests/ directory",
        ));
    }
    let mut plan = LegacyPlan {
        dir: dir.to_path_buf(),
        ..LegacyPlan::default()
    };
    let catalog = if has_catalog {
        read_catalog(&catalog_path, &mut plan.notes)
    } else {
        plan.notes
            .push("no catalog.json: every manifest under manifests/ is imported".into());
        None
    };
    let mut candidates = Vec::new();
    if has_manifests {
        list_manifests(&manifests_dir, &mut candidates, &mut plan)?;
    } else {
        plan.notes
            .push("no manifests/ directory: nothing to import".into());
    }
    if let Some(catalog) = catalog {
        let present: BTreeSet<&str> = candidates.iter().map(|(p, _)| p.as_str()).collect();
        for (name, tags) in catalog {
            for tag in tags {
                let path = format!("manifests/{name}/{tag}.json");
                if !present.contains(path.as_str())
                    && !plan.skipped.iter().any(|s| s.manifest == path)
                {
                    plan.skipped.push(Skipped {
                        manifest: path,
                        reason: "catalog.json lists it, but the manifest file is missing".into(),
                    });
                }
            }
        }
    }
    let checked: Vec<std::result::Result<LegacyManifest, Skipped>> = candidates
        .par_iter()
        .map(|(rel, file)| {
            check_manifest(dir, rel, file).map_err(|reason| Skipped {
                manifest: rel.clone(),
                reason,
            })
        })
        .collect();
    for c in checked {
        match c {
            Ok(m) => plan.manifests.push(m),
            Err(s) => plan.skipped.push(s),
        }
    }
    plan.manifests.sort_by(|a, b| a.path.cmp(&b.path));
    plan.skipped.sort_by(|a, b| a.manifest.cmp(&b.manifest));
    Ok(plan)
}

/// The repositories and tags `catalog.json` lists; `None` (with a note)
/// when it cannot be read.
fn read_catalog(path: &Path, notes: &mut Vec<String>) -> Option<BTreeMap<String, Vec<String>>> {
    let raw = match durable::read_capped(path, DOCUMENT_LIMIT, "catalog.json") {
        Ok(raw) => raw,
        Err(e) => {
            notes.push(format!(
                "catalog.json is unreadable ({e}); manifests/ is used alone"
            ));
            return None;
        }
    };
    let v: Value = match serde_json::from_slice(&raw) {
        Ok(v) => v,
        Err(e) => {
            notes.push(format!(
                "catalog.json is not JSON ({e}); manifests/ is used alone"
            ));
            return None;
        }
    };
    let mut out = BTreeMap::new();
    if let Some(repos) = v.get("repositories").and_then(Value::as_object) {
        for (name, repo) in repos {
            let tags = repo
                .get("tags")
                .and_then(Value::as_object)
                .map(|t| t.keys().cloned().collect())
                .unwrap_or_default();
            out.insert(name.clone(), tags);
        }
    } else {
        notes.push("catalog.json has no repositories object; manifests/ is used alone".into());
    }
    Some(out)
}

/// Collects `manifests/NAME/TAG.json` files (relative path, full path);
/// anything else that looks like a manifest is skipped with a reason.
fn list_manifests(
    manifests_dir: &Path,
    out: &mut Vec<(String, PathBuf)>,
    plan: &mut LegacyPlan,
) -> Result<()> {
    let mut skip = |manifest: String, reason: &str| {
        plan.skipped.push(Skipped {
            manifest,
            reason: reason.to_string(),
        })
    };
    let mut digests_dirs = 0;
    for entry in fs::read_dir(manifests_dir).ctx("list directory", manifests_dir)? {
        let entry = entry.ctx("list directory", manifests_dir)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let kind = entry.file_type().ctx("stat", entry.path())?;
        if !kind.is_dir() {
            if name.ends_with(".json") {
                skip(
                    format!("manifests/{name}"),
                    "not in manifests/NAME/TAG.json: no repository name",
                );
            }
            continue;
        }
        let repo_dir = entry.path();
        for e in fs::read_dir(&repo_dir).ctx("list directory", &repo_dir)? {
            let e = e.ctx("list directory", &repo_dir)?;
            let file = e.file_name().to_string_lossy().into_owned();
            let rel = format!("manifests/{name}/{file}");
            let kind = e.file_type().ctx("stat", e.path())?;
            if kind.is_dir() {
                if file == "_digests" {
                    digests_dirs += 1;
                } else {
                    skip(
                        format!("{rel}/"),
                        "a directory inside a repository: names containing '/' are not supported",
                    );
                }
            } else if file.ends_with(".json") {
                if kind.is_file() {
                    out.push((rel, e.path()));
                } else {
                    skip(rel, "not a regular file (symlinks are never followed)");
                }
            }
        }
    }
    if digests_dirs > 0 {
        plan.notes.push(format!(
            "ignored {digests_dirs} manifests/NAME/_digests/ directories: by-digest copies of the tagged manifests"
        ));
    }
    out.sort();
    Ok(())
}

/// Reads and checks one manifest and the blobs it names.
fn check_manifest(
    dir: &Path,
    rel: &str,
    path: &Path,
) -> std::result::Result<LegacyManifest, String> {
    let raw = durable::read_capped(path, DOCUMENT_LIMIT, rel).map_err(|e| e.to_string())?;
    let digest = Digest::of_bytes(Algorithm::Sha256, &raw);
    let value: Value = serde_json::from_slice(&raw).map_err(|e| format!("not valid JSON: {e}"))?;
    if !value.is_object() {
        return Err("not a JSON object".into());
    }
    match value.get("schemaVersion") {
        Some(v) if v.as_i64() == Some(1) => {}
        Some(v) if v.as_i64() == Some(2) => {
            return Err(
                "schemaVersion 2: an OCI manifest (pushed through epoch's registry \
                        API), not a legacy snapshot manifest; import it with an OCI tool"
                    .into(),
            );
        }
        Some(v) => return Err(format!("schemaVersion {v} is not 1, the legacy format")),
        None => return Err("no schemaVersion: not a legacy snapshot manifest".into()),
    }
    let m: RawManifest = serde_json::from_value(value.clone())
        .map_err(|e| format!("not a legacy snapshot manifest: {e}"))?;
    // manifests/NAME/TAG.json
    let mut parts = rel.splitn(3, '/').skip(1);
    let dir_name = parts.next().unwrap_or_default();
    let tag_file = parts.next().unwrap_or_default();
    let path_tag = tag_file.strip_suffix(".json").unwrap_or(tag_file);
    let name = if m.name.is_empty() { dir_name } else { &m.name };
    let tag = if m.tag.is_empty() { path_tag } else { &m.tag };
    for (what, v) in [("name", name), ("tag", tag)] {
        check_plain(what, v)?;
    }
    if name != dir_name || tag != path_tag {
        return Err(format!(
            "it says {name}:{tag} but is stored as {rel}; refusing the ambiguity"
        ));
    }
    let layers = m.layers.as_deref().unwrap_or_default();
    if layers.is_empty() {
        return Err("it has no layers: no files to import".into());
    }
    let mut problems = Vec::new();
    let mut seen = BTreeSet::new();
    let mut files = Vec::new();
    for (i, l) in layers.iter().enumerate() {
        match check_layer(dir, l, &mut seen) {
            Ok(f) => files.push(f),
            Err(p) => problems.push(format!("layer {i} ({:?}): {p}", l.filename)),
        }
    }
    if !problems.is_empty() {
        return Err(problems.join("; "));
    }
    let base_images: Vec<BaseImage> = m
        .base_images
        .as_deref()
        .unwrap_or_default()
        .iter()
        .map(|b| BaseImage {
            filename: b.filename.clone(),
            digest: b.digest.clone(),
            size: b.size,
            blob: parse_hex(&b.digest)
                .ok()
                .map(|d| dir.join("blobs/sha256").join(d.hex()))
                .filter(|p| fs::symlink_metadata(p).is_ok_and(|m| m.is_file())),
        })
        .collect();
    let config = legacy_config(&m, &value, rel, &digest, &base_images);
    Ok(LegacyManifest {
        path: rel.to_string(),
        digest,
        name: name.to_string(),
        tag: tag.to_string(),
        files,
        base_images,
        config,
    })
}

/// A name or tag must be a plain path component.
fn check_plain(what: &str, v: &str) -> std::result::Result<(), String> {
    let why = if v.is_empty() {
        "is empty"
    } else if v == "." || v == ".." || v.contains("../") {
        "names a parent directory"
    } else if v.contains('/') {
        "contains '/'"
    } else if v.contains('\0') {
        "contains a NUL byte"
    } else {
        return Ok(());
    };
    Err(format!("its {what} {v:?} {why}"))
}

/// A legacy digest: 64 lowercase hex, with or without `sha256:`.
fn parse_hex(s: &str) -> Result<Digest> {
    let hex = s.strip_prefix("sha256:").unwrap_or(s);
    Digest::from_hex(Algorithm::Sha256, hex)
}

fn check_layer(
    dir: &Path,
    l: &RawLayer,
    seen: &mut BTreeSet<String>,
) -> std::result::Result<LegacyFile, String> {
    let name = &l.filename;
    if name.split('/').any(|c| c == "..") {
        return Err("the filename climbs out of the snapshot directory".into());
    }
    if name.starts_with('/') {
        return Err("the filename is an absolute path".into());
    }
    crate::unpack::validate_file_name(name).map_err(|e| e.to_string())?;
    if name == crate::cocoon_tar::SNAPSHOT_JSON {
        return Err("snapshot.json is cocoon's envelope, not a snapshot file".into());
    }
    if !seen.insert(name.clone()) {
        return Err("the filename appears twice".into());
    }
    let digest = parse_hex(&l.digest).map_err(|e| format!("bad digest: {e}"))?;
    let size = u64::try_from(l.size).map_err(|_| format!("negative size {}", l.size))?;
    let rel = format!("blobs/sha256/{}", digest.hex());
    let path = dir.join(&rel);
    let md = match fs::symlink_metadata(&path) {
        Ok(md) => md,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(format!("its blob {rel} is missing"));
        }
        Err(e) => return Err(format!("cannot stat its blob {rel}: {e}")),
    };
    if !md.is_file() {
        return Err(format!(
            "its blob {rel} is a {}, not a regular file",
            durable::kind_name(&md)
        ));
    }
    if md.len() != size {
        return Err(format!(
            "size mismatch: the manifest says {size} bytes, {rel} has {}",
            md.len()
        ));
    }
    Ok(LegacyFile {
        name: name.clone(),
        digest,
        size,
        path,
    })
}

/// The snapshot config of a legacy manifest (see the module docs).
fn legacy_config(
    m: &RawManifest,
    value: &Value,
    rel: &str,
    digest: &Digest,
    base_images: &[BaseImage],
) -> SnapshotConfig {
    let mut ids: BTreeMap<String, Value> = m
        .image_blob_ids
        .as_ref()
        .map(|ids| {
            ids.keys()
                .map(|k| (k.clone(), Value::Object(Default::default())))
                .collect()
        })
        .unwrap_or_default();
    for b in base_images {
        let id = b
            .filename
            .strip_suffix(".qcow2")
            .or_else(|| b.filename.strip_suffix(".raw"))
            .unwrap_or(&b.filename);
        if !id.is_empty() {
            ids.insert(id.to_string(), Value::Object(Default::default()));
        }
    }
    let created_at = m
        .created_at
        .clone()
        .filter(|t| {
            time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
                .is_ok_and(|t| t.year() > 1)
        })
        .unwrap_or_default();
    let mut extra = BTreeMap::new();
    extra.insert(
        CONFIG_KEY.to_string(),
        serde_json::json!({
            "path": rel,
            "manifestDigest": digest.to_string(),
            "manifest": value,
        }),
    );
    SnapshotConfig {
        snapshot_id: m.snapshot_id.clone(),
        image: m.image.clone(),
        image_blob_ids: ids,
        cpu: m.cpu,
        memory: m.memory,
        storage: m.storage,
        nics: m.nics,
        created_at,
        extra,
        ..SnapshotConfig::default()
    }
}

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
    let mut report = LegacyReport {
        skipped: plan.skipped.clone(),
        notes: plan.notes.clone(),
        ..LegacyReport::default()
    };
    let layout = writer.layout();
    for m in &plan.manifests {
        let ref_name = format!("{}{}:{}", options.ref_prefix, m.name, m.tag);
        let mut entry = converted(m, &ref_name);
        if let Err(e) = crate::validate_ref(&ref_name) {
            report.skipped.push(skipped(m, e.to_string()));
            continue;
        }
        match existing(layout, &ref_name, m)? {
            Existing::None => {}
            Existing::Same(d) if !options.force => {
                entry.digest = Some(d);
                entry.unchanged = true;
                report.converted.push(entry);
                continue;
            }
            Existing::Other(d) if !options.force => {
                report.skipped.push(skipped(
                    m,
                    format!(
                        "the ref {ref_name} exists ({d}) and is not an import of this manifest; \
                         pass --force to replace it, or --ref-prefix to import beside it"
                    ),
                ));
                continue;
            }
            _ => {}
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
            if let Some(old) = index.find(&ref_name)
                && old.digest != manifest.digest
                && !force
            {
                return Ok(Some(old.digest.clone()));
            }
            index.set_ref(&ref_name, &manifest);
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
    let mut report = LegacyReport {
        skipped: plan.skipped.clone(),
        notes: plan.notes.clone(),
        ..LegacyReport::default()
    };
    for m in &plan.manifests {
        let ref_name = format!("{}{}:{}", options.ref_prefix, m.name, m.tag);
        let mut entry = converted(m, &ref_name);
        if let Err(e) = crate::validate_ref(&ref_name) {
            report.skipped.push(skipped(m, e.to_string()));
            continue;
        }
        if let Some(layout) = layout {
            match existing(layout, &ref_name, m)? {
                Existing::Same(d) if !options.force => {
                    entry.digest = Some(d);
                    entry.unchanged = true;
                }
                Existing::Other(d) if !options.force => {
                    report.skipped.push(skipped(
                        m,
                        format!(
                            "the ref {ref_name} exists ({d}) and is not an import of this manifest; \
                             pass --force to replace it, or --ref-prefix to import beside it"
                        ),
                    ));
                    continue;
                }
                _ => {}
            }
        }
        report.converted.push(entry);
    }
    Ok(report)
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
    let Some(desc) = index.find(ref_name) else {
        return Ok(Existing::None);
    };
    let same = crate::snapshot::plan(layout, desc).is_ok_and(|p| {
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
    let mut opened = Vec::new();
    for f in &m.files {
        let (file, md) = match durable::open_regular(&f.path) {
            Ok(x) => x,
            Err(e) => return Ok(Err(format!("{}: {e}", f.name))),
        };
        if md.len() != f.size {
            return Ok(Err(format!(
                "{}: size mismatch: the manifest says {} bytes, the blob has {}",
                f.name,
                f.size,
                md.len()
            )));
        }
        let map = match SparseMap::of_file(&file) {
            Ok(map) => map,
            Err(e) => {
                return Ok(Err(format!(
                    "{}: cannot find the data extents of {}: {e}",
                    f.name,
                    f.path.display()
                )));
            }
        };
        opened.push(Opened {
            file,
            map,
            stamp: stamp(&md),
        });
    }
    let levels: Vec<Option<i32>> = opened
        .iter()
        .map(|o| options.pack.level_for(o.map.stored_len()))
        .collect();
    let media_types: Vec<String> = m
        .files
        .iter()
        .zip(&levels)
        .map(|(f, level)| layer_media_type(&f.name, level.is_some()))
        .collect();
    let sources: Vec<Source<'_>> = m
        .files
        .iter()
        .zip(&opened)
        .zip(levels.iter().zip(&media_types))
        .map(|((f, o), (level, mt))| Source {
            path: &f.path,
            file: &o.file,
            map: &o.map,
            media_type: mt,
            zstd_level: *level,
        })
        .collect();
    progress.begin("importing", opened.iter().map(|o| o.map.stored_len()).sum());
    let (hashes, stored) = rayon::join(
        || {
            m.files
                .par_iter()
                .zip(&opened)
                .map(|(f, o)| {
                    crate::hash::hash_file(&o.file, f.size, Algorithm::Sha256, &NoProgress)
                })
                .collect::<Vec<_>>()
        },
        || put_sources(writer, &sources, options.pack.chunking(), progress),
    );
    progress.finish();
    drop(sources);
    let stored = match stored {
        Ok(s) => s,
        Err(e) if reads_source(&e, &plan.dir) => return Ok(Err(e.to_string())),
        Err(e) => return Err(e),
    };
    for ((f, o), hash) in m.files.iter().zip(&opened).zip(hashes) {
        let found = match hash {
            Ok(d) => d,
            Err(e) => return Ok(Err(format!("{}: read {}: {e}", f.name, f.path.display()))),
        };
        if found != f.digest {
            return Ok(Err(format!(
                "{}: digest mismatch: blobs/sha256/{} hashes to {found}; the blob is damaged",
                f.name,
                f.digest.hex()
            )));
        }
        let after = match o.file.metadata() {
            Ok(md) => md,
            Err(e) => return Ok(Err(format!("{}: stat {}: {e}", f.name, f.path.display()))),
        };
        if stamp(&after) != o.stamp {
            return Ok(Err(format!(
                "{}: {} changed while it was imported; run the import again",
                f.name,
                f.path.display()
            )));
        }
    }
    let files: Vec<StoredFile> = m
        .files
        .iter()
        .zip(opened)
        .zip(stored)
        .zip(levels)
        .map(|(((f, o), chunks), level)| StoredFile {
            name: f.name.clone(),
            mode: 0,
            map: o.map,
            chunks,
            compressed: level.is_some(),
        })
        .collect();
    write_snapshot_manifest(writer, &options.pack, m.config.clone(), &files).map(Ok)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::unpack::validate_file_name;

    fn write_store(dir: &Path, manifests: &[(&str, &str, Value)], blobs: &[&[u8]]) {
        fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
        for b in blobs {
            let d = Digest::of_bytes(Algorithm::Sha256, b);
            fs::write(dir.join("blobs/sha256").join(d.hex()), b).unwrap();
        }
        for (name, tag, v) in manifests {
            fs::create_dir_all(dir.join("manifests").join(name)).unwrap();
            fs::write(
                dir.join("manifests").join(name).join(format!("{tag}.json")),
                serde_json::to_vec(v).unwrap(),
            )
            .unwrap();
        }
    }

    fn layer(name: &str, data: &[u8]) -> Value {
        serde_json::json!({
            "digest": Digest::of_bytes(Algorithm::Sha256, data).hex(),
            "size": data.len(), "filename": name, "mediaType": "application/octet-stream"
        })
    }

    #[test]
    fn plan_sorts_good_from_bad_and_import_round_trips() -> Result<()> {
        let tmp = tempfile::tempdir().unwrap();
        let store = tmp.path().join("legacy");
        let (mem, cfg) = (vec![7u8; 5000], b"{\"cpus\":{}}".to_vec());
        let good = serde_json::json!({
            "schemaVersion": 1, "name": "bot", "tag": "v1", "snapshotId": "sid-1",
            "cpu": 2, "memory": 1073741824_u64, "storage": 5, "nics": 1,
            "imageBlobIDs": {"abc": "blobs/sha256/abc"},
            "layers": [layer("memory-ranges", &mem), layer("config.json", &cfg)],
            "baseImages": [{"digest": "ab", "size": 1, "filename": "def.qcow2"}],
            "createdAt": "2026-03-01T12:00:00.5+08:00", "pushedAt": "2026-03-02T00:00:00Z",
            "totalSize": 5011
        });
        let evil = serde_json::json!({
            "schemaVersion": 1, "name": "bot", "tag": "evil",
            "layers": [layer("../x", &mem)]
        });
        let v2 = serde_json::json!({"schemaVersion": 2, "layers": []});
        write_store(
            &store,
            &[
                ("bot", "v1", good),
                ("bot", "evil", evil),
                ("bot", "oci", v2),
            ],
            &[&mem, &cfg],
        );
        fs::write(store.join("manifests/bot/broken.json"), b"{nope").unwrap();
        let plan = plan_legacy(&store)?;
        assert_eq!(plan.manifests.len(), 1, "{plan:#?}");
        let reasons: Vec<&str> = plan.skipped.iter().map(|s| s.reason.as_str()).collect();
        assert_eq!(plan.skipped.len(), 3, "{reasons:?}");
        assert!(
            reasons.iter().any(|r| r.contains("climbs out")),
            "{reasons:?}"
        );
        assert!(
            reasons.iter().any(|r| r.contains("schemaVersion 2")),
            "{reasons:?}"
        );
        assert!(
            reasons.iter().any(|r| r.contains("not valid JSON")),
            "{reasons:?}"
        );
        let layout = Layout::init(tmp.path().join("layout"))?;
        let w = layout.writer()?;
        let opts = LegacyOptions::default().ref_prefix("old/");
        let report = import_legacy(&w, &plan, &opts, &NoProgress)?;
        assert_eq!(report.converted.len(), 1);
        assert_eq!(report.converted[0].ref_name, "old/bot:v1");
        let desc = layout.resolve("old/bot:v1")?;
        let p = crate::snapshot::plan(&layout, &desc)?;
        assert_eq!(p.config.snapshot_id, "sid-1");
        assert_eq!(p.config.cpu, 2);
        assert_eq!(p.config.created_at, "2026-03-01T12:00:00.5+08:00");
        assert!(p.config.image_blob_ids.contains_key("abc"));
        assert!(p.config.image_blob_ids.contains_key("def"));
        assert_eq!(
            p.config.extra[CONFIG_KEY]["manifest"]["pushedAt"],
            "2026-03-02T00:00:00Z"
        );
        let names: Vec<&str> = p.files.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["memory-ranges", "config.json"]);
        // Again: the same manifest is recognised, nothing is copied.
        let again = import_legacy(&w, &plan, &opts, &NoProgress)?;
        assert!(again.converted[0].unchanged);
        assert_eq!(again.converted[0].digest, Some(desc.digest.clone()));
        // Forced: the same bytes give the same digest (createdAt is the legacy one).
        let forced = import_legacy(&w, &plan, &opts.clone().force(true), &NoProgress)?;
        assert_eq!(forced.converted[0].digest, Some(desc.digest));
        assert!(validate_file_name("memory-ranges").is_ok());
        Ok(())
    }

    #[test]
    fn a_damaged_blob_skips_its_manifest() -> Result<()> {
        let tmp = tempfile::tempdir().unwrap();
        let store = tmp.path().join("legacy");
        let data = vec![1u8; 3000];
        let m = serde_json::json!({
            "schemaVersion": 1, "name": "a", "tag": "1", "layers": [layer("memory-ranges", &data)]
        });
        write_store(&store, &[("a", "1", m)], &[&data]);
        let hex = Digest::of_bytes(Algorithm::Sha256, &data).hex().to_string();
        fs::write(store.join("blobs/sha256").join(&hex), vec![2u8; 3000]).unwrap();
        let plan = plan_legacy(&store)?;
        let layout = Layout::init(tmp.path().join("layout"))?;
        let report = import_legacy(
            &layout.writer()?,
            &plan,
            &LegacyOptions::default(),
            &NoProgress,
        )?;
        assert!(report.converted.is_empty());
        assert!(
            report.skipped[0].reason.contains("digest mismatch"),
            "{report:?}"
        );
        assert!(layout.read_index()?.entries().is_empty());
        Ok(())
    }

    #[test]
    fn not_a_legacy_store_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        let e = plan_legacy(tmp.path()).unwrap_err().to_string();
        assert!(e.contains("not a legacy epoch store"), "{e}");
    }
}
