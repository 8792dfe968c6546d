//! cocoonstack snapshot config and file-name conventions.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::media_type as mt;

/// The config blob of a cocoonstack snapshot (media type
/// [`mt::SNAPSHOT_CONFIG`], used by v1 and v2). Unknown fields are kept.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotConfig {
    /// `"v1"` or `"v2"`.
    #[serde(default)]
    pub schema_version: String,
    /// The snapshot id.
    #[serde(default)]
    pub snapshot_id: String,
    /// Free text.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// The image the VM was created from.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub image: String,
    /// The digest of that image.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub image_digest: String,
    /// `"oci"` or `"cloudimg"`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub image_type: String,
    /// Base image blob ids (hex -> `{}`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub image_blob_ids: BTreeMap<String, serde_json::Value>,
    /// `"cloud-hypervisor"` or `"firecracker"`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub hypervisor: String,
    /// vCPUs.
    #[serde(default, skip_serializing_if = "is_zero_i64")]
    pub cpu: i64,
    /// Memory in bytes.
    #[serde(default, skip_serializing_if = "is_zero_i64")]
    pub memory: i64,
    /// Storage in bytes.
    #[serde(default, skip_serializing_if = "is_zero_i64")]
    pub storage: i64,
    /// Network interfaces.
    #[serde(default, skip_serializing_if = "is_zero_i64")]
    pub nics: i64,
    /// Network name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub network: String,
    /// A Windows guest.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub windows: bool,
    /// Per-file metadata by file name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub files: BTreeMap<String, SnapshotFile>,
    /// RFC 3339 creation time.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub created_at: String,
    /// Fields this version does not know, kept as they were.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// Per-file metadata in a [`SnapshotConfig`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotFile {
    /// Unix mode bits.
    #[serde(default, skip_serializing_if = "is_zero_i64")]
    pub mode: i64,
    /// cocoon's sparse map, verbatim: `[{"o":OFFSET,"l":LENGTH},...]`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sparse_map: String,
    /// Logical size of a sparse file.
    #[serde(default, skip_serializing_if = "is_zero_i64")]
    pub sparse_size: i64,
    /// v2: uncompressed length of the stored entry.
    #[serde(default, skip_serializing_if = "is_zero_i64")]
    pub size: i64,
    /// v2: ordered chunk digests.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub chunks: Vec<String>,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

fn is_zero_i64(v: &i64) -> bool {
    *v == 0
}

/// The layer media type cocoonstack uses for a snapshot file of this name.
///
/// ```
/// use epoch_store::formats::cocoon::config::media_type_for_cocoon_file;
/// use epoch_store::model::media_type;
/// assert_eq!(media_type_for_cocoon_file("memory-ranges"), media_type::VM_MEMORY);
/// assert_eq!(media_type_for_cocoon_file("data-abc.raw"), media_type::DISK_RAW);
/// assert_eq!(media_type_for_cocoon_file("vmstate"), media_type::GENERIC);
/// ```
pub fn media_type_for_cocoon_file(name: &str) -> &'static str {
    match name {
        "config.json" => mt::VM_CONFIG,
        "state.json" => mt::VM_STATE,
        "memory-ranges" => mt::VM_MEMORY,
        "cidata.img" => mt::VM_CIDATA,
        "overlay.qcow2" => mt::DISK_QCOW2,
        n if n.ends_with(".qcow2") => mt::DISK_QCOW2,
        n if n.ends_with(".raw") => mt::DISK_RAW,
        _ => mt::GENERIC,
    }
}

/// Whether `media_type` is a disk layer (qcow2 or raw, whole or part, current
/// or legacy Windows names, with or without `+zstd`).
pub fn is_disk_media_type(media_type: &str) -> bool {
    let base = media_type.strip_suffix("+zstd").unwrap_or(media_type);
    matches!(
        base,
        mt::DISK_QCOW2
            | mt::DISK_QCOW2_PART
            | mt::DISK_RAW
            | mt::DISK_RAW_PART
            | mt::WINDOWS_DISK_QCOW2
            | mt::WINDOWS_DISK_QCOW2_PART
            | mt::WINDOWS_DISK_RAW
            | mt::WINDOWS_DISK_RAW_PART
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cocoon_file_media_types() {
        for (name, want) in [
            ("config.json", mt::VM_CONFIG),
            ("state.json", mt::VM_STATE),
            ("memory-ranges", mt::VM_MEMORY),
            ("cidata.img", mt::VM_CIDATA),
            ("overlay.qcow2", mt::DISK_QCOW2),
            ("base.qcow2", mt::DISK_QCOW2),
            ("cow.raw", mt::DISK_RAW),
            ("data-x1.raw", mt::DISK_RAW),
            ("cocoon.json", mt::GENERIC),
            ("mem", mt::GENERIC),
        ] {
            assert_eq!(media_type_for_cocoon_file(name), want, "{name}");
        }
    }

    #[test]
    fn disk_media_types() {
        assert!(is_disk_media_type(mt::WINDOWS_DISK_RAW_PART));
        assert!(is_disk_media_type(
            "application/vnd.cocoonstack.disk.qcow2+zstd"
        ));
        assert!(!is_disk_media_type(mt::VM_MEMORY));
        assert!(!is_disk_media_type(mt::GENERIC));
    }

    #[test]
    fn snapshot_config_keeps_unknown_fields() {
        let raw = r#"{"schemaVersion":"v2","snapshotId":"s1","cpu":2,"files":{"cow.raw":{"mode":420,"size":10,"chunks":["sha256:aa"],"future":true}},"later":{"x":1}}"#;
        let c: SnapshotConfig = serde_json::from_str(raw).unwrap();
        assert_eq!(c.cpu, 2);
        assert_eq!(c.files["cow.raw"].chunks.len(), 1);
        let back: serde_json::Value = serde_json::to_value(&c).unwrap();
        assert_eq!(back["later"]["x"], 1);
        assert_eq!(back["files"]["cow.raw"]["future"], true);
    }
}
