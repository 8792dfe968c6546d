//! Reading a legacy store: which manifests can be converted, to what.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::Deserialize;
use serde_json::Value;

use super::{BaseImage, CONFIG_KEY, LegacyFile, LegacyManifest, LegacyPlan, Skipped};
use crate::error::{Error, IoContext, Result};
use crate::formats::cocoon::config::SnapshotConfig;
use crate::io::digest::{Algorithm, Digest};
use crate::io::input::FileState;
use crate::store::layout::DOCUMENT_LIMIT;

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
/// hashed only by [`import_legacy`](super::import_legacy)). Reads nothing
/// outside `dir` and follows no symlink.
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
    let raw = match crate::io::input::read_capped(path, DOCUMENT_LIMIT, "catalog.json") {
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

/// A manifest's JSON, if it is a legacy (schemaVersion 1) manifest.
fn legacy_json(raw: &[u8]) -> std::result::Result<Value, String> {
    let value: Value = serde_json::from_slice(raw).map_err(|e| format!("not valid JSON: {e}"))?;
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
    Ok(value)
}

/// Reads and checks one manifest and the blobs it names.
fn check_manifest(
    dir: &Path,
    rel: &str,
    path: &Path,
) -> std::result::Result<LegacyManifest, String> {
    let raw =
        crate::io::input::read_capped(path, DOCUMENT_LIMIT, rel).map_err(|e| e.to_string())?;
    let digest = Digest::of_bytes(Algorithm::Sha256, &raw);
    let value = legacy_json(&raw)?;
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
    // The two ways a legacy filename usually goes wrong get their own words;
    // the rule itself is validate_file_name's, as for every other name.
    let name = &l.filename;
    if name.split('/').any(|c| c == "..") {
        return Err("the filename climbs out of the snapshot directory".into());
    }
    if name.starts_with('/') {
        return Err("the filename is an absolute path".into());
    }
    crate::model::name::validate_file_name(name).map_err(|e| e.to_string())?;
    if name == crate::formats::cocoon::tar::SNAPSHOT_JSON {
        return Err("snapshot.json is cocoon's envelope, not a snapshot file".into());
    }
    if !seen.insert(name.clone()) {
        return Err("the filename appears twice".into());
    }
    let digest = parse_hex(&l.digest).map_err(|e| format!("bad digest: {e}"))?;
    let size = u64::try_from(l.size).map_err(|_| format!("negative size {}", l.size))?;
    let rel = format!("blobs/sha256/{}", digest.hex());
    let path = dir.join(&rel);
    match crate::io::input::file_state(&path, size) {
        Ok(FileState::Present) => {}
        Ok(FileState::Missing) => return Err(format!("its blob {rel} is missing")),
        Ok(FileState::NotRegular(kind)) => {
            return Err(format!("its blob {rel} is a {kind}, not a regular file"));
        }
        Ok(FileState::WrongSize(len)) => {
            return Err(format!(
                "size mismatch: the manifest says {size} bytes, {rel} has {len}"
            ));
        }
        Err(e) => return Err(format!("cannot stat its blob {rel}: {e}")),
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
