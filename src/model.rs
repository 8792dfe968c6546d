//! The data model: media types, annotations, descriptors, documents
//! (manifests and indexes), artifact kinds, cocoonstack snapshot configs and
//! the catalog derived from ref names.
//!
//! Documents are parsed for reading only; their bytes are never re-serialized.

pub mod annotation;
mod catalog;
mod descriptor;
mod document;
mod kind;
pub mod media_type;
mod snapshot;

pub use catalog::{Catalog, Repository};
pub use descriptor::{Descriptor, Platform};
pub use document::Document;
pub use kind::{Kind, classify};
pub use snapshot::{SnapshotConfig, SnapshotFile, is_disk_media_type, media_type_for_cocoon_file};
