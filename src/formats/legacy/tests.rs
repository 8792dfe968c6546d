//! Unit tests of the legacy import.

use std::fs;
use std::path::Path;

use serde_json::Value;

use super::*;
use crate::error::Result;
use crate::io::digest::{Algorithm, Digest};
use crate::io::progress::NoProgress;
use crate::model::name::validate_file_name;
use crate::store::layout::Layout;

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
    let p = crate::formats::cocoon::snapshot::plan(&layout, &desc)?;
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
