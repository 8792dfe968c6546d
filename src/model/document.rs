//! Manifests and indexes, parsed for reading.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{Descriptor, media_type};

/// An image manifest or image index (OCI or Docker), parsed from its raw bytes
/// for reading. Which one it is follows from the fields it has; a document
/// with both `manifests` and `config`/`layers` is ambiguous and rejected
/// (CVE-2021-41190).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Document {
    /// `schemaVersion` (2 for every supported document).
    #[serde(default)]
    pub schema_version: Option<u32>,
    /// The document's own `mediaType` field.
    #[serde(default)]
    pub media_type: Option<String>,
    /// `artifactType`.
    #[serde(default)]
    pub artifact_type: Option<String>,
    /// A manifest's config.
    #[serde(default)]
    pub config: Option<Descriptor>,
    /// A manifest's layers.
    #[serde(default)]
    pub layers: Option<Vec<Descriptor>>,
    /// An index's manifests.
    #[serde(default)]
    pub manifests: Option<Vec<Descriptor>>,
    /// The manifest this one refers to (referrers).
    #[serde(default)]
    pub subject: Option<Descriptor>,
    /// Annotations.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

impl Document {
    /// Parses and checks a document.
    ///
    /// `declared` is the media type of the descriptor that pointed here, if
    /// any: the document's own `mediaType`, when present, must agree with it.
    ///
    /// # Errors
    /// [`Error::InvalidDocument`](crate::Error::InvalidDocument) about
    /// "document", saying what is wrong; callers name the blob with
    /// `in_document`.
    pub fn parse(raw: &[u8], declared: Option<&str>) -> crate::Result<Document> {
        Document::parse_reason(raw, declared)
            .map_err(|reason| crate::Error::document("document", reason))
    }

    fn parse_reason(raw: &[u8], declared: Option<&str>) -> Result<Document, String> {
        let doc: Document = serde_json::from_slice(raw)
            .map_err(|e| format!("not a valid manifest or index: {e}"))?;
        if doc.manifests.is_some() && (doc.config.is_some() || doc.layers.is_some()) {
            return Err("ambiguous: it has both `manifests` and `config`/`layers`".into());
        }
        if let (Some(own), Some(declared)) = (&doc.media_type, declared)
            && own != declared
            && media_type::is_document(declared)
        {
            return Err(format!(
                "its mediaType {own:?} contradicts the descriptor's {declared:?}"
            ));
        }
        let looks_index = doc.manifests.is_some();
        let expected_index = declared
            .map(media_type::is_index)
            .or(doc.media_type.as_deref().map(media_type::is_index));
        if expected_index == Some(true) && !looks_index {
            return Err("an index without a `manifests` array".into());
        }
        if expected_index == Some(false) && !looks_index && doc.config.is_none() {
            return Err("a manifest without a `config` descriptor".into());
        }
        if expected_index == Some(false) && looks_index {
            return Err("a manifest with a `manifests` array".into());
        }
        // lf-edge's Pusher marshals its manifest without setting the
        // version (`"schemaVersion":0`); its ECIs are read all the same.
        let lfedge = doc.schema_version == Some(0) && super::eci::is_eci(&doc);
        if doc.schema_version != Some(2) && !lfedge {
            return Err(format!(
                "schemaVersion is {}, expected 2",
                doc.schema_version
                    .map_or("missing".to_string(), |v| v.to_string())
            ));
        }
        Ok(doc)
    }

    /// Whether this is an index (has `manifests`).
    pub fn is_index(&self) -> bool {
        self.manifests.is_some()
    }

    /// Every descriptor this document points to: config, layers, manifests, subject.
    pub fn children(&self) -> impl Iterator<Item = &Descriptor> {
        self.parts().chain(self.subject.iter())
    }

    /// What this document is made of: config, layers, manifests (not its
    /// subject, which it only refers to: a push or pull of a signature does
    /// not carry the image it signs).
    pub fn parts(&self) -> impl Iterator<Item = &Descriptor> {
        self.config
            .iter()
            .chain(self.layers.iter().flatten())
            .chain(self.manifests.iter().flatten())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = r#"{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2}"#;

    #[test]
    fn parses_manifest_and_lists_children() {
        let raw = format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","config":{D},"layers":[{D},{D}],"subject":{D},"extra":1}}"#,
            media_type::OCI_MANIFEST
        );
        let doc = Document::parse(raw.as_bytes(), Some(media_type::OCI_MANIFEST)).unwrap();
        assert_eq!(doc.children().count(), 4);
        assert!(!doc.is_index());
    }

    #[test]
    fn rejects_ambiguous_and_contradictory_documents() {
        let both = format!(r#"{{"schemaVersion":2,"config":{D},"layers":[],"manifests":[]}}"#);
        assert!(
            Document::parse(both.as_bytes(), None)
                .unwrap_err()
                .to_string()
                .contains("ambiguous")
        );
        let idx = format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","manifests":[{D}]}}"#,
            media_type::OCI_INDEX
        );
        assert!(
            Document::parse(idx.as_bytes(), Some(media_type::OCI_MANIFEST))
                .unwrap_err()
                .to_string()
                .contains("contradicts")
        );
        assert!(Document::parse(b"{\"schemaVersion\":1,\"manifests\":[]}", None).is_err());
        let v0 = format!(r#"{{"schemaVersion":0,"config":{D},"layers":[]}}"#);
        assert!(Document::parse(v0.as_bytes(), None).is_err());
        let eci = format!(
            r#"{{"schemaVersion":0,"config":{D},"layers":[{{"mediaType":"a/b","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2,"annotations":{{"org.lfedge.eci.role":"kernel"}}}}]}}"#
        );
        assert!(Document::parse(eci.as_bytes(), None).is_ok());
        assert!(Document::parse(b"[1,2]", None).is_err());
        let no_manifests = r#"{"schemaVersion":2}"#;
        assert!(Document::parse(no_manifests.as_bytes(), Some(media_type::OCI_INDEX)).is_err());
    }
}
