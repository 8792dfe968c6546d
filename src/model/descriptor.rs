//! Content descriptors.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::{annotation, media_type};
use crate::io::digest::{Algorithm, Digest};

/// The platform of a manifest in an index (image-spec `platform`), with
/// its JSON keys as the spec spells them: `os.version` and `os.features`.
/// Our own type: `oci-spec` 0.10's `Platform` reads those two as
/// `osVersion`/`osFeatures` and so loses them from every real index.
/// Fields epoch-store does not know are not kept (documents are never
/// re-serialized from this).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    /// CPU architecture (`amd64`, `arm64`, ...; as written, not normalised).
    #[serde(default)]
    pub architecture: String,
    /// Operating system (`linux`, `windows`, ...; as written).
    #[serde(default)]
    pub os: String,
    /// The OS version the image needs (`10.0.20348.2113` on Windows).
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
    /// OS features the image needs (`win32k`).
    #[serde(
        rename = "os.features",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_features: Option<Vec<String>>,
    /// CPU variant (`v8`, `v7`, `v3`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

/// An OCI content descriptor: media type, digest and size of the content it
/// points to, plus the optional fields of image-spec v1.1.
///
/// The digest is validated while parsing, so a descriptor's digest is always
/// safe to turn into a path. Annotations are kept sorted so that documents
/// epoch-store writes serialize the same way every time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// Media type of the referenced content.
    pub media_type: String,
    /// Digest of the referenced content.
    pub digest: Digest,
    /// Size of the referenced content in bytes.
    pub size: u64,
    /// Where else the content may be downloaded from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urls: Option<Vec<String>>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// The content itself, base64, for small blobs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    /// The platform of a manifest in an index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    /// The artifact type of the manifest it points to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
}

impl Descriptor {
    /// A descriptor with just the required fields.
    pub fn new(media_type: impl Into<String>, digest: Digest, size: u64) -> Descriptor {
        Descriptor {
            media_type: media_type.into(),
            digest,
            size,
            urls: None,
            annotations: BTreeMap::new(),
            data: None,
            platform: None,
            artifact_type: None,
        }
    }

    /// The OCI empty descriptor (`{}`), used as the config of artifacts.
    pub fn empty() -> Descriptor {
        Descriptor::new(
            media_type::OCI_EMPTY,
            Digest::of_bytes(Algorithm::Sha256, b"{}"),
            2,
        )
    }

    /// The `org.opencontainers.image.title` annotation, if any.
    pub fn title(&self) -> Option<&str> {
        self.annotations.get(annotation::TITLE).map(String::as_str)
    }

    /// The `org.opencontainers.image.ref.name` annotation, if any.
    pub fn ref_name(&self) -> Option<&str> {
        self.annotations
            .get(annotation::REF_NAME)
            .map(String::as_str)
    }

    /// Checks the embedded `data` field, if present, against size and digest.
    ///
    /// # Errors
    /// [`Error::InvalidDocument`](crate::Error::InvalidDocument) about this
    /// descriptor, saying what does not match.
    pub fn check_data(&self) -> crate::Result<()> {
        self.check_data_reason().map_err(|reason| {
            crate::Error::document(format!("the descriptor of {}", self.digest), reason)
        })
    }

    fn check_data_reason(&self) -> Result<(), String> {
        let Some(data) = &self.data else {
            return Ok(());
        };
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(data)
            .map_err(|e| format!("its data field is not valid base64: {e}"))?;
        if bytes.len() as u64 != self.size {
            return Err(format!(
                "its data field holds {} bytes but size says {}",
                bytes.len(),
                self.size
            ));
        }
        let found = Digest::of_bytes(self.digest.algorithm(), &bytes);
        if found != self.digest {
            return Err(format!("its data field hashes to {found}"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_validates_digest() {
        let ok = r#"{"mediaType":"a/b","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2,"data":"e30="}"#;
        let d: Descriptor = serde_json::from_str(ok).unwrap();
        assert_eq!(
            d,
            Descriptor {
                data: Some("e30=".into()),
                ..Descriptor::new("a/b", Descriptor::empty().digest, 2)
            }
        );
        assert!(d.check_data().is_ok());
        let bad = ok.replace("sha256:4413", "sha256:../../");
        assert!(serde_json::from_str::<Descriptor>(&bad).is_err());
        let negative = ok.replace("\"size\":2", "\"size\":-2");
        assert!(serde_json::from_str::<Descriptor>(&negative).is_err());
    }

    #[test]
    fn data_field_is_checked() {
        let mut d = Descriptor::empty();
        d.data = Some("W10=".into());
        assert!(
            d.check_data()
                .unwrap_err()
                .to_string()
                .contains("hashes to")
        );
        d.data = Some("e30=e30=".into());
        assert!(d.check_data().is_err());
        d.data = Some("!!".into());
        assert!(d.check_data().unwrap_err().to_string().contains("base64"));
    }
}
