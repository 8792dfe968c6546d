//! The image config as [`build`](super::build) edits it: every field of
//! the base kept, `rootfs.diff_ids` and `history` appended to, `created`,
//! `Entrypoint`, `Cmd` and `Env` set, and the platform filled in where the
//! base has none (`SetPlatform`).

use serde_json::{Map, Value, json};

use super::{BuildOptions, LayerSource, NewLayer};
use crate::error::{Error, Result};
use crate::model::{Platform, media_type as mt};

/// Largest base config read (configs are a few KiB).
pub(super) const LIMIT: u64 = 4 << 20;

/// The config of an empty image for `platform`.
pub(super) fn scratch(platform: &Platform) -> Vec<u8> {
    let mut v = json!({
        "architecture": platform.architecture,
        "os": platform.os,
        "config": {},
        "rootfs": { "type": "layers", "diff_ids": [] },
        "history": [],
    });
    set_platform(v.as_object_mut().expect("an object"), platform);
    serde_json::to_vec(&v).expect("JSON values serialize")
}

/// The manifest of an empty image, before its config and layers.
pub(super) fn scratch_manifest() -> Map<String, Value> {
    let v = json!({
        "schemaVersion": 2,
        "mediaType": mt::OCI_MANIFEST,
        "config": {},
        "layers": [],
    });
    match v {
        Value::Object(m) => m,
        _ => unreachable!("an object"),
    }
}

/// The platform a config names, if it names os and architecture.
pub(super) fn platform_of(config: &[u8]) -> Option<Platform> {
    let p: Platform = serde_json::from_slice(config).ok()?;
    (!p.os.is_empty() && !p.architecture.is_empty()).then_some(p)
}

/// `base` with the new layers, times and settings.
///
/// # Errors
/// A base config that is not a JSON object, or whose `rootfs`, `history`
/// or `config` has the wrong shape.
pub(super) fn edit(
    base: &[u8],
    layers: &[NewLayer],
    options: &BuildOptions,
    platform: &Platform,
) -> Result<Vec<u8>> {
    let bad = |reason: &str| Error::document("the base image's config", reason.to_string());
    let mut v: Value = serde_json::from_slice(base).map_err(|e| bad(&e.to_string()))?;
    let obj = v.as_object_mut().ok_or_else(|| bad("not a JSON object"))?;
    let base_layers = append_diff_ids(obj, layers).map_err(bad)?;
    append_history(obj, base_layers, options).map_err(bad)?;
    obj.insert("created".into(), Value::String(options.created.clone()));
    set_run_config(obj, options).map_err(bad)?;
    if obj
        .get("os")
        .and_then(Value::as_str)
        .unwrap_or("")
        .is_empty()
        || obj
            .get("architecture")
            .and_then(Value::as_str)
            .unwrap_or("")
            .is_empty()
    {
        set_platform(obj, platform);
    }
    Ok(serde_json::to_vec(&v).expect("JSON values serialize"))
}

/// Appends the layers' diffIDs; returns how many the base had.
fn append_diff_ids(
    obj: &mut Map<String, Value>,
    layers: &[NewLayer],
) -> Result<usize, &'static str> {
    let rootfs = obj
        .entry("rootfs")
        .or_insert_with(|| json!({ "type": "layers", "diff_ids": [] }));
    let rootfs = rootfs.as_object_mut().ok_or("`rootfs` is not an object")?;
    rootfs.insert("type".into(), Value::String("layers".into()));
    let ids = rootfs
        .entry("diff_ids")
        .or_insert_with(|| Value::Array(vec![]));
    let Value::Array(ids) = ids else {
        return Err("`rootfs.diff_ids` is not a list");
    };
    let had = ids.len();
    ids.extend(layers.iter().map(|l| Value::String(l.diff_id.to_string())));
    Ok(had)
}

/// One history entry per new layer: when the base has a history, or has
/// no layers (a history on a base without one would not line up with its
/// layers, so none is started then).
fn append_history(
    obj: &mut Map<String, Value>,
    base_layers: usize,
    options: &BuildOptions,
) -> Result<(), &'static str> {
    if !obj.contains_key("history") && base_layers > 0 {
        return Ok(());
    }
    let history = obj.entry("history").or_insert_with(|| Value::Array(vec![]));
    let Value::Array(history) = history else {
        return Err("`history` is not a list");
    };
    for source in &options.layers {
        history.push(json!({
            "created": options.created,
            "created_by": created_by(source),
            "comment": "epoch-store build",
        }));
    }
    Ok(())
}

/// What a history entry says a layer holds (no local paths: they mean
/// nothing where the image runs).
fn created_by(source: &LayerSource) -> String {
    let base = |p: &std::path::Path| {
        p.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    match source {
        LayerSource::File { name, .. } => format!("epoch-store build: file /{name}"),
        LayerSource::Tree(dir) => format!("epoch-store build: directory {} at /", base(dir)),
        LayerSource::Tar(tar) => format!("epoch-store build: layer {}", base(tar)),
    }
}

/// `Entrypoint`, `Cmd` and `Env` of the config's `config`.
fn set_run_config(
    obj: &mut Map<String, Value>,
    options: &BuildOptions,
) -> Result<(), &'static str> {
    let run = obj.entry("config").or_insert_with(|| json!({}));
    if run.is_null() {
        *run = json!({});
    }
    let run = run.as_object_mut().ok_or("`config` is not an object")?;
    if let Some(entrypoint) = &options.entrypoint {
        run.insert("Entrypoint".into(), json!(entrypoint));
        if options.cmd.is_none() {
            run.remove("Cmd");
        }
    }
    if let Some(cmd) = &options.cmd {
        run.insert("Cmd".into(), json!(cmd));
    }
    if !options.env.is_empty() {
        let env = run.entry("Env").or_insert_with(|| Value::Array(vec![]));
        if env.is_null() {
            *env = Value::Array(vec![]);
        }
        let Value::Array(env) = env else {
            return Err("`config.Env` is not a list");
        };
        for (key, value) in &options.env {
            let prefix = format!("{key}=");
            env.retain(|e| !e.as_str().is_some_and(|s| s.starts_with(&prefix)));
            env.push(Value::String(format!("{key}={value}")));
        }
    }
    Ok(())
}

/// Sets os, architecture, variant, os.version and os.features.
fn set_platform(obj: &mut Map<String, Value>, p: &Platform) {
    obj.insert("architecture".into(), json!(p.architecture));
    obj.insert("os".into(), json!(p.os));
    for (key, value) in [
        ("variant", p.variant.as_ref().map(|v| json!(v))),
        ("os.version", p.os_version.as_ref().map(|v| json!(v))),
        ("os.features", p.os_features.as_ref().map(|v| json!(v))),
    ] {
        match value {
            Some(v) => obj.insert(key.into(), v),
            None => obj.remove(key),
        };
    }
}
