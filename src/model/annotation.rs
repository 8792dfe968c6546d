//! Annotation keys.

/// The ref name of an `index.json` entry: a tag.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// A layer's file name.
pub const TITLE: &str = "org.opencontainers.image.title";
/// RFC 3339 creation time.
pub const CREATED: &str = "org.opencontainers.image.created";
/// Source URL.
pub const SOURCE: &str = "org.opencontainers.image.source";
/// Source revision.
pub const REVISION: &str = "org.opencontainers.image.revision";
/// Free-text description.
pub const DESCRIPTION: &str = "org.opencontainers.image.description";
/// cocoonstack snapshot id.
pub const SNAPSHOT_ID: &str = "cocoonstack.snapshot.id";
/// cocoonstack snapshot base image.
pub const SNAPSHOT_BASE_IMAGE: &str = "cocoonstack.snapshot.baseimage";
