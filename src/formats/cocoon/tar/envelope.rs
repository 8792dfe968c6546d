//! `snapshot.json`, the envelope that opens cocoon's tar stream, and its
//! mapping to the OCI config blob ([`SnapshotConfig`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::formats::cocoon::config::SnapshotConfig;

/// The only envelope `version` this build reads and writes.
pub const ENVELOPE_VERSION: u32 = 1;

/// `snapshot.json`: `{"version":1,"config":{...}}`, cocoon's
/// `types.SnapshotExport`. Unknown keys are kept in [`Envelope::extra`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// The envelope format version; [`ENVELOPE_VERSION`] is the only one
    /// accepted.
    pub version: u32,
    /// The snapshot's description.
    pub config: EnvelopeConfig,
    /// Top-level keys this version does not know, kept as they were.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

impl Envelope {
    /// An envelope of the current version around `config`.
    pub fn new(config: EnvelopeConfig) -> Envelope {
        Envelope {
            version: ENVELOPE_VERSION,
            config,
            extra: BTreeMap::new(),
        }
    }
}

/// The `config` object of `snapshot.json` (cocoon's snake_case
/// `types.SnapshotConfig`). Every field is optional on input; empty fields
/// are left out on output as cocoon does (`omitempty`), except `name`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EnvelopeConfig {
    /// The snapshot id.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    /// The snapshot name in cocoon.
    #[serde(default)]
    pub name: String,
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
    /// Base image blob ids (hex -> `{}`), which cocoon pins against its gc.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub image_blob_ids: BTreeMap<String, Value>,
    /// `"cloud-hypervisor"` or `"firecracker"`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub hypervisor: String,
    /// vCPUs.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cpu: i64,
    /// Memory in bytes.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub memory: i64,
    /// Storage in bytes.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub storage: i64,
    /// Network interfaces.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub nics: i64,
    /// Network name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub network: String,
    /// A Windows guest.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub windows: bool,
    /// Keys this version does not know, kept as they were.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

fn is_zero(v: &i64) -> bool {
    *v == 0
}

/// The keys [`EnvelopeConfig`] knows (its JSON names).
const ENVELOPE_KEYS: &[&str] = &[
    "id",
    "name",
    "description",
    "image",
    "image_digest",
    "image_type",
    "image_blob_ids",
    "hypervisor",
    "cpu",
    "memory",
    "storage",
    "nics",
    "network",
    "windows",
];

/// The keys [`SnapshotConfig`] knows (its JSON names).
const SNAPSHOT_CONFIG_KEYS: &[&str] = &[
    "schemaVersion",
    "snapshotId",
    "description",
    "image",
    "imageDigest",
    "imageType",
    "imageBlobIds",
    "hypervisor",
    "cpu",
    "memory",
    "storage",
    "nics",
    "network",
    "windows",
    "files",
    "createdAt",
];

/// `extra` without the keys that would collide with a known field once
/// flattened into the other struct (which would serialize a key twice).
fn extra_without(extra: &BTreeMap<String, Value>, known: &[&str]) -> BTreeMap<String, Value> {
    extra
        .iter()
        .filter(|(k, _)| !known.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

impl EnvelopeConfig {
    /// The OCI config blob fields this envelope fills: `id` becomes
    /// `snapshotId`, `image_digest` `imageDigest`, and so on; unknown keys
    /// are carried into [`SnapshotConfig::extra`] (except any that would
    /// collide with a known camelCase field). `name` is not part of the
    /// config blob: it becomes the ref. `schema_version`, `files` and
    /// `created_at` are left for the artifact writer to fill.
    pub fn to_snapshot_config(&self) -> SnapshotConfig {
        SnapshotConfig {
            snapshot_id: self.id.clone(),
            description: self.description.clone(),
            image: self.image.clone(),
            image_digest: self.image_digest.clone(),
            image_type: self.image_type.clone(),
            image_blob_ids: self.image_blob_ids.clone(),
            hypervisor: self.hypervisor.clone(),
            cpu: self.cpu,
            memory: self.memory,
            storage: self.storage,
            nics: self.nics,
            network: self.network.clone(),
            windows: self.windows,
            extra: extra_without(&self.extra, SNAPSHOT_CONFIG_KEYS),
            ..SnapshotConfig::default()
        }
    }

    /// The envelope config for a stored snapshot named `name`: the inverse
    /// of [`EnvelopeConfig::to_snapshot_config`]. Unknown keys of the config
    /// blob are carried into [`EnvelopeConfig::extra`] (except any that
    /// would collide with a known snake_case field); `files`, `createdAt`
    /// and `schemaVersion` are epoch's and are dropped.
    pub fn from_snapshot_config(c: &SnapshotConfig, name: &str) -> EnvelopeConfig {
        EnvelopeConfig {
            id: c.snapshot_id.clone(),
            name: name.to_string(),
            description: c.description.clone(),
            image: c.image.clone(),
            image_digest: c.image_digest.clone(),
            image_type: c.image_type.clone(),
            image_blob_ids: c.image_blob_ids.clone(),
            hypervisor: c.hypervisor.clone(),
            cpu: c.cpu,
            memory: c.memory,
            storage: c.storage,
            nics: c.nics,
            network: c.network.clone(),
            windows: c.windows,
            extra: extra_without(&c.extra, ENVELOPE_KEYS),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> EnvelopeConfig {
        let raw = json!({
            "id": "sn-1", "name": "win11", "description": "golden",
            "image": "ghcr.io/x/win11:1", "image_digest": "sha256:ab",
            "image_type": "cloudimg", "image_blob_ids": {"ab12": {}},
            "hypervisor": "cloud-hypervisor", "cpu": 4, "memory": 8589934592_i64,
            "storage": 107374182400_i64, "nics": 2, "network": "br0", "windows": true,
            "future_key": {"x": [1, 2]}, "snapshotId": "collides"
        });
        serde_json::from_value(raw).expect("sample parses")
    }

    #[test]
    fn snapshot_config_mapping_keeps_every_field() -> Result<(), serde_json::Error> {
        let e = sample();
        let c = e.to_snapshot_config();
        assert_eq!(c.snapshot_id, "sn-1");
        assert_eq!(c.image, "ghcr.io/x/win11:1");
        assert_eq!(c.image_digest, "sha256:ab");
        assert_eq!(c.image_type, "cloudimg");
        assert_eq!(c.image_blob_ids.keys().collect::<Vec<_>>(), ["ab12"]);
        assert_eq!(c.hypervisor, "cloud-hypervisor");
        assert_eq!(
            (c.cpu, c.memory, c.storage, c.nics),
            (4, 8 << 30, 100 << 30, 2)
        );
        assert_eq!(c.network, "br0");
        assert!(c.windows);
        assert_eq!(c.description, "golden");
        assert_eq!(c.extra["future_key"], json!({"x": [1, 2]}));
        // An unknown envelope key that names a known config field would be
        // serialized twice; it is dropped instead.
        assert!(!c.extra.contains_key("snapshotId"));
        let blob = serde_json::to_string(&c)?;
        assert_eq!(blob.matches("\"snapshotId\"").count(), 1, "{blob}");

        let back = EnvelopeConfig::from_snapshot_config(&c, "win11");
        let mut want = e.clone();
        want.extra.remove("snapshotId");
        assert_eq!(back, want);
        Ok(())
    }

    #[test]
    fn serializes_like_cocoon() -> Result<(), serde_json::Error> {
        let env = Envelope::new(EnvelopeConfig {
            name: "n".into(),
            cpu: 2,
            ..EnvelopeConfig::default()
        });
        assert_eq!(
            serde_json::to_string(&env)?,
            r#"{"version":1,"config":{"name":"n","cpu":2}}"#
        );
        let parsed: Envelope =
            serde_json::from_str(r#"{"version":1,"config":{"name":"n","cpu":2},"later":true}"#)?;
        assert_eq!(parsed.config.cpu, 2);
        assert_eq!(parsed.extra["later"], json!(true));
        Ok(())
    }
}
