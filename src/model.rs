//! The data model: media types, annotations, descriptors, documents
//! (manifests and indexes), artifact kinds, ref names and the
//! catalog derived from them.
//!
//! Documents are parsed for reading only; their bytes are never re-serialized.

pub mod annotation;
mod catalog;
mod descriptor;
mod document;
pub mod eci;
mod kind;
pub mod media_type;
pub mod name;
pub mod platform;

pub use catalog::{Catalog, Repository};
pub use descriptor::{Descriptor, Platform};
pub use document::Document;
pub use kind::{Kind, classify};
