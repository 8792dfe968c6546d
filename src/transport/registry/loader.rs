//! A [`Loader`] over a registry ref: `load` and the platform selection of
//! the images work read a remote image or index without pulling it. Every
//! document is verified against its digest (the root against the digest
//! asked for, or the registry's `Docker-Content-Digest`); blobs are
//! streamed and checked at their end.

use std::io::Read;

use super::client::{Call, Client, check_status};
use super::pull::fetch_manifest;
use super::reference::Reference;
use crate::error::Result;
use crate::formats::image::Loader;
use crate::io::digest::{Algorithm, Digest};
use crate::model::Descriptor;
use crate::store::reader::BlobReader;

/// A [`Loader`] over what a registry reference names.
#[derive(Debug)]
pub struct RegistryLoader<'c> {
    client: &'c Client,
    reference: Reference,
    root: (Vec<u8>, String),
}

impl<'c> RegistryLoader<'c> {
    /// Fetches the root document `reference` names through `client`.
    ///
    /// # Errors
    /// The registry unreachable or refusing; a root that is not a verified
    /// manifest or index.
    pub fn new(client: &'c Client, reference: &Reference) -> Result<RegistryLoader<'c>> {
        let root = fetch_manifest(client, &reference.target(), reference.digest.as_ref(), None)?;
        Ok(RegistryLoader {
            client,
            reference: reference.clone(),
            root,
        })
    }
}

impl Loader for RegistryLoader<'_> {
    fn root_digest(&self) -> Option<Digest> {
        Some(
            self.reference
                .digest
                .clone()
                .unwrap_or_else(|| Digest::of_bytes(Algorithm::Sha256, &self.root.0)),
        )
    }

    fn root(&self) -> Result<(Vec<u8>, String)> {
        Ok(self.root.clone())
    }

    fn manifest(&self, desc: &Descriptor) -> Result<Vec<u8>> {
        Ok(fetch_manifest(
            self.client,
            &desc.digest.to_string(),
            Some(&desc.digest),
            Some(desc),
        )?
        .0)
    }

    fn blob(&self, desc: &Descriptor) -> Result<Box<dyn Read + '_>> {
        let resp = self.client.send(&mut Call::new(
            "GET",
            self.client.url(&format!("blobs/{}", desc.digest)),
        ))?;
        check_status(self.client, &resp, &format!("blob {}", desc.digest))?;
        let body = resp.into_body().into_reader();
        Ok(Box::new(BlobReader::new(
            body,
            desc.digest.clone(),
            desc.size,
        )))
    }
}
