//! Container images (OCI and Docker v2), as the image package of the seed
//! models them: a [`Loader`] is where manifests and blobs come from, and
//! [`load`] reads a root (an index, a Docker list, or a bare manifest: a
//! one-entry index) into the platform-specific images it reaches, nested
//! indexes followed to any depth, every document verified, each image's
//! platform from its index entry or else its config.
//! [`LoadedIndex::select_by_platform`] ranks them by containerd's rules;
//! [`Image::verify_layers`] checks every layer's digest and diffID;
//! [`build::build`] appends layers and settings to a base's images.

pub mod build;
mod load;

pub use load::{Image, ImageConfig, Layer, LoadedIndex, MAX_DEPTH, RootFs, load};

use std::io::Read;

use crate::error::Result;
use crate::io::digest::Digest;
use crate::model::Descriptor;
use crate::store::layout::{DOCUMENT_LIMIT, Layout};

/// Where an image's manifests and blobs come from (a layout ref; an OCI
/// archive and a registry next). Every read is verified against its
/// digest by the implementation.
pub trait Loader {
    /// The digest of the root document, if known in advance.
    fn root_digest(&self) -> Option<Digest>;
    /// The root document's bytes and its media type as its referrer knows
    /// it (an index, a Docker list, or a manifest).
    fn root(&self) -> Result<(Vec<u8>, String)>;
    /// The bytes of the manifest or index `desc` names, verified.
    fn manifest(&self, desc: &Descriptor) -> Result<Vec<u8>>;
    /// A reader of the blob `desc` names that fails at its end if the
    /// bytes do not match the digest or size.
    fn blob(&self, desc: &Descriptor) -> Result<Box<dyn Read + '_>>;
}

/// A [`Loader`] over a ref (or digest) of a layout.
#[derive(Debug)]
pub struct LayoutLoader<'a> {
    layout: &'a Layout,
    root: Descriptor,
}

impl<'a> LayoutLoader<'a> {
    /// The loader of what `target` (a ref or a digest) names in `layout`.
    ///
    /// # Errors
    /// A ref or digest that is not there.
    pub fn new(layout: &'a Layout, target: &str) -> Result<LayoutLoader<'a>> {
        Ok(LayoutLoader {
            root: layout.resolve(target)?,
            layout,
        })
    }
}

impl LayoutLoader<'_> {
    /// The descriptor of the root `target` resolved to.
    pub fn root_descriptor(&self) -> &Descriptor {
        &self.root
    }
}

impl Loader for LayoutLoader<'_> {
    fn root_digest(&self) -> Option<Digest> {
        Some(self.root.digest.clone())
    }

    fn root(&self) -> Result<(Vec<u8>, String)> {
        Ok((
            self.layout.read_blob(&self.root, DOCUMENT_LIMIT)?,
            self.root.media_type.clone(),
        ))
    }

    fn manifest(&self, desc: &Descriptor) -> Result<Vec<u8>> {
        self.layout.read_blob(desc, DOCUMENT_LIMIT)
    }

    fn blob(&self, desc: &Descriptor) -> Result<Box<dyn Read + '_>> {
        Ok(Box::new(self.layout.open_blob(desc)?))
    }
}
