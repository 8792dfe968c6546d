//! Layer 3, the store: the layout on disk, the publish protocol's writer,
//! locks, verified readers, `index.json`, the reference graph, what is on
//! disk, gc, verify and disk usage.
//!
//! The store knows documents (manifests, indexes) and blobs, never what a
//! particular artifact format keeps in them.

pub mod artifact;
pub mod du;
pub(crate) mod gc;
pub(crate) mod graph;
pub(crate) mod index;
pub(crate) mod inventory;
pub(crate) mod layout;
pub(crate) mod lock;
pub(crate) mod reader;
pub(crate) mod summary;
pub(crate) mod verify;
pub(crate) mod writer;
