//! lf-edge edge-container images (ECI), as
//! `github.com/lf-edge/edge-containers/pkg/registry` writes and reads them
//! (its `Artifact`, `Pusher` and `Puller`): a kernel, an initrd, a root
//! disk, additional disks, a config file and other files, each one layer of
//! an OCI image manifest, in one of two formats:
//!
//! - **artifacts**: each file is its layer, with its lfedge media type
//!   ([`model::eci`](crate::model::eci));
//! - **legacy**: each file is a gzip tar layer
//!   (`application/vnd.oci.image.layer.v1.tar+gzip`) holding that one file,
//!   with a fixed timestamp, so that container tools can pull it.
//!
//! In both, every layer is annotated with its lfedge media type
//! (`org.lfedge.eci.mediaType`), its role (`org.lfedge.eci.role`, empty for
//! the config and other files) and its title: `kernel`, `initrd`,
//! `disk-root-<name>`, `disk-<N>-<name>`, `config.json`, and other files by
//! their names. Without a config file the config is an OCI image config
//! whose labels give each file's path (`org.lfedge.eci.artifact.*`).
//!
//! Where lf-edge's Pusher and this module differ (`docs/interop.md`): the
//! manifest's `schemaVersion` is 2 (lf-edge writes 0, which is read all the
//! same); the generated config's `created` is the fixed timestamp, not the
//! time of the push, and its `rootfs.diff_ids` are each layer's own diffID
//! (lf-edge repeats stale digests of the compressed layers); the gzip
//! stream around a legacy layer's tar is flate2's, not Go's (the tar
//! inside, and so the diffID, is byte for byte what Go writes).

mod layer;
mod pack;
mod read;
mod unpack;

use std::fmt;
use std::str::FromStr;

pub use pack::{Disk, EciFiles, PackOptions, pack};
pub use read::{EciImage, Packing, Part, read};
pub use unpack::{Unpacked, unpack};

/// How the files are stored (lf-edge's `Format`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Each file its own layer with its lfedge media type (`FormatArtifacts`).
    #[default]
    Artifacts,
    /// Each file in a gzip tar layer (`FormatLegacy`).
    Legacy,
}

impl Format {
    /// `artifacts` or `legacy`.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Artifacts => "artifacts",
            Format::Legacy => "legacy",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Format, String> {
        match s {
            "artifacts" => Ok(Format::Artifacts),
            "legacy" => Ok(Format::Legacy),
            _ => Err(format!(
                "unknown ECI format {s:?}: one of artifacts, legacy"
            )),
        }
    }
}

/// The title lf-edge gives the root disk: `disk-root-<name>`.
pub fn root_title(name: &str) -> String {
    format!("disk-root-{name}")
}

/// The title lf-edge gives additional disk `index`: `disk-<index>-<name>`.
pub fn disk_title(index: usize, name: &str) -> String {
    format!("disk-{index}-{name}")
}

/// The title of the kernel, `kernel`.
pub const KERNEL_TITLE: &str = "kernel";
/// The title of the initrd, `initrd`.
pub const INITRD_TITLE: &str = "initrd";
/// The title of the config (file or generated), `config.json`.
pub const CONFIG_TITLE: &str = "config.json";
