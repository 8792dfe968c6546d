//! Artifact classification.

use std::fmt;

use serde::Serialize;

use super::{Document, media_type as mt};

/// What a manifest or index holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// A cocoonstack OS (cloud) disk image. Named `cloud-image` as
    /// cocoon-common's `Classify` names it (the peer defines the word users
    /// see); its artifactType says `os-image`, which names the code that
    /// packs and unpacks it, [`formats::cocoon::os_image`](crate::formats::cocoon::os_image).
    CloudImage,
    /// A cocoonstack VM snapshot (v1 or v2).
    Snapshot,
    /// An lf-edge edge-container image (ECI): kernel, initrd, disks,
    /// config and other files, in lf-edge's "artifacts" or "legacy" format
    /// (see [`model::eci`](crate::model::eci)).
    Eci,
    /// An ordinary container image (OCI or Docker config).
    ContainerImage,
    /// An OCI index or Docker manifest list.
    ImageIndex,
    /// Anything else (other artifacts).
    Unknown,
}

impl Kind {
    /// The name used in listings and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::CloudImage => "cloud-image",
            Kind::Snapshot => "snapshot",
            Kind::Eci => "eci",
            Kind::ContainerImage => "container-image",
            Kind::ImageIndex => "image-index",
            Kind::Unknown => "unknown",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Classifies a document; the first matching rule wins: artifactType
/// os-image or windows-image, then snapshot v1/v2, then an lf-edge ECI
/// (whose legacy format has an OCI image config), then an OCI or Docker
/// image config, then an index or list, else unknown.
///
/// `top_media_type` is the media type the document is known by (its
/// descriptor's), used when the document does not carry its own.
pub fn classify(doc: &Document, top_media_type: Option<&str>) -> Kind {
    let artifact_type = doc
        .artifact_type
        .as_deref()
        .or(doc.config.as_ref().map(|c| c.media_type.as_str()));
    match artifact_type {
        Some(mt::ARTIFACT_OS_IMAGE | mt::ARTIFACT_WINDOWS_IMAGE) => return Kind::CloudImage,
        Some(mt::ARTIFACT_SNAPSHOT | mt::ARTIFACT_SNAPSHOT_V2) => return Kind::Snapshot,
        _ => {}
    }
    if super::eci::is_eci(doc) {
        return Kind::Eci;
    }
    let config = doc.config.as_ref().map(|c| c.media_type.as_str());
    if matches!(config, Some(mt::OCI_IMAGE_CONFIG | mt::DOCKER_CONFIG)) {
        return Kind::ContainerImage;
    }
    let top = doc.media_type.as_deref().or(top_media_type);
    if top.is_some_and(mt::is_index) || (top.is_none() && doc.is_index()) {
        return Kind::ImageIndex;
    }
    Kind::Unknown
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Descriptor;

    fn manifest(artifact: Option<&str>, config_mt: &str) -> Document {
        let mut config = Descriptor::empty();
        config.media_type = config_mt.into();
        Document {
            schema_version: Some(2),
            artifact_type: artifact.map(Into::into),
            config: Some(config),
            layers: Some(vec![]),
            ..Document::default()
        }
    }

    #[test]
    fn classification_rules_in_order() {
        assert_eq!(
            classify(&manifest(Some(mt::ARTIFACT_OS_IMAGE), mt::OCI_EMPTY), None),
            Kind::CloudImage
        );
        assert_eq!(
            classify(
                &manifest(Some(mt::ARTIFACT_WINDOWS_IMAGE), mt::OCI_EMPTY),
                None
            ),
            Kind::CloudImage
        );
        assert_eq!(
            classify(
                &manifest(Some(mt::ARTIFACT_SNAPSHOT_V2), mt::SNAPSHOT_CONFIG),
                None
            ),
            Kind::Snapshot
        );
        // Older snapshots carry the type only as the config media type.
        assert_eq!(
            classify(&manifest(None, mt::ARTIFACT_SNAPSHOT), None),
            Kind::Snapshot
        );
        assert_eq!(
            classify(&manifest(None, mt::DOCKER_CONFIG), None),
            Kind::ContainerImage
        );
        assert_eq!(
            classify(
                &manifest(Some("application/x-other"), mt::OCI_IMAGE_CONFIG),
                None
            ),
            Kind::ContainerImage
        );
        assert_eq!(
            classify(&manifest(Some("application/x-other"), mt::OCI_EMPTY), None),
            Kind::Unknown
        );
        let mut eci = manifest(None, mt::OCI_IMAGE_CONFIG);
        let mut layer = Descriptor::empty();
        layer
            .annotations
            .insert(crate::model::eci::ANNOTATION_ROLE.into(), "kernel".into());
        eci.layers = Some(vec![layer]);
        assert_eq!(classify(&eci, None), Kind::Eci);
        assert_eq!(
            classify(&manifest(None, crate::model::eci::CONFIG), None),
            Kind::Eci
        );
        let index = Document {
            schema_version: Some(2),
            manifests: Some(vec![]),
            ..Document::default()
        };
        assert_eq!(classify(&index, Some(mt::DOCKER_INDEX)), Kind::ImageIndex);
        assert_eq!(classify(&index, None), Kind::ImageIndex);
    }
}
