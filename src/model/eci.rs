//! lf-edge edge-container images (ECI): the media types, annotations, roles
//! and disk types of `github.com/lf-edge/edge-containers/pkg/registry`
//! (`mimeTypes.go`, `annotations.go`, `roles.go`, `artifact.go`, at
//! v0.0.0-20240207093504-5dfda0619b80), and how an ECI manifest is
//! recognised. The files themselves are packed and unpacked by
//! [`formats::eci`](crate::formats::eci).

use std::fmt;

use super::Document;

/// The ECI artifact type (`MimeTypeECIArtifact`); lf-edge defines it but
/// its Pusher never writes it (every ECI manifest is an OCI image manifest).
pub const ARTIFACT: &str = "application/vnd.lfedge.eci.v1+json";
/// The config file of an ECI (`MimeTypeECIConfig`).
pub const CONFIG: &str = "application/vnd.lfedge.eci.config.v1+json";
/// The kernel (`MimeTypeECIKernel`).
pub const KERNEL: &str = "application/vnd.lfedge.eci.kernel.layer.v1+kernel";
/// The initrd (`MimeTypeECIInitrd`).
pub const INITRD: &str = "application/vnd.lfedge.eci.initrd.layer.v1+cpio";
/// Any other file (`MimeTypeECIOther`).
pub const OTHER: &str = "application/vnd.lfedge.eci.layer.v1";

/// Layer annotation: the file's own lfedge media type, in both formats
/// (`AnnotationMediaType`).
pub const ANNOTATION_MEDIA_TYPE: &str = "org.lfedge.eci.mediaType";
/// Layer annotation: the file's role, empty for the config and other files
/// (`AnnotationRole`).
pub const ANNOTATION_ROLE: &str = "org.lfedge.eci.role";
/// Config label: the root disk's path in the image (`AnnotationRootPath`).
pub const LABEL_ROOT: &str = "org.lfedge.eci.artifact.root";
/// Config label: the initrd's path (`AnnotationInitrdPath`).
pub const LABEL_INITRD: &str = "org.lfedge.eci.artifact.initrd";
/// Config label: the kernel's path (`AnnotationKernelPath`).
pub const LABEL_KERNEL: &str = "org.lfedge.eci.artifact.kernel";
/// Config label prefix of additional disk N's path: `...disk-N`
/// (`AnnotationDiskIndexPathPattern`, `org.lfedge.eci.artifact.disk-%d`).
pub const LABEL_DISK_PREFIX: &str = "org.lfedge.eci.artifact.disk-";
/// Config label: the path of the last other file (`AnnotationOther`; the
/// Pusher overwrites it for each one, so only the last is named).
pub const LABEL_OTHER: &str = "org.lfedge.eci.other";
/// The generated config's author when none is given (`DefaultAuthor`).
pub const DEFAULT_AUTHOR: &str = "lf-edge/edge-containers";

/// What a file is to an ECI.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// The kernel (`kernel`).
    Kernel,
    /// The initrd (`initrd`).
    Initrd,
    /// The root disk (`disk-root`).
    RootDisk,
    /// An additional disk (`disk-additional`).
    AdditionalDisk,
    /// The config file (no role annotation; media type [`CONFIG`]).
    Config,
    /// Any other file (no role annotation).
    Other,
}

impl Role {
    /// The `org.lfedge.eci.role` value: empty for the config and others, as
    /// lf-edge writes them.
    pub fn annotation(self) -> &'static str {
        match self {
            Role::Kernel => "kernel",
            Role::Initrd => "initrd",
            Role::RootDisk => "disk-root",
            Role::AdditionalDisk => "disk-additional",
            Role::Config | Role::Other => "",
        }
    }

    /// The role named by an `org.lfedge.eci.role` value, if it names one.
    pub fn from_annotation(value: &str) -> Option<Role> {
        Some(match value {
            "kernel" => Role::Kernel,
            "initrd" => Role::Initrd,
            "disk-root" => Role::RootDisk,
            "disk-additional" => Role::AdditionalDisk,
            _ => return None,
        })
    }

    /// The name shown to users: `kernel`, `initrd`, `root`, `disk`,
    /// `config`, `other`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Kernel => "kernel",
            Role::Initrd => "initrd",
            Role::RootDisk => "root",
            Role::AdditionalDisk => "disk",
            Role::Config => "config",
            Role::Other => "other",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A disk's format, one of the eight lf-edge knows (`DiskType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DiskType {
    /// `raw`.
    Raw,
    /// `vmdk`.
    Vmdk,
    /// `vhd`.
    Vhd,
    /// `iso`.
    Iso,
    /// `qcow`.
    Qcow,
    /// `qcow2`.
    Qcow2,
    /// `ova`.
    Ova,
    /// `vhdx`.
    Vhdx,
}

impl DiskType {
    /// All eight, in lf-edge's order.
    pub const ALL: [DiskType; 8] = [
        DiskType::Raw,
        DiskType::Vmdk,
        DiskType::Vhd,
        DiskType::Iso,
        DiskType::Qcow,
        DiskType::Qcow2,
        DiskType::Ova,
        DiskType::Vhdx,
    ];

    /// The name users write (`NameToType`'s keys): `raw`, `qcow2`, ...
    pub fn name(self) -> &'static str {
        match self {
            DiskType::Raw => "raw",
            DiskType::Vmdk => "vmdk",
            DiskType::Vhd => "vhd",
            DiskType::Iso => "iso",
            DiskType::Qcow => "qcow",
            DiskType::Qcow2 => "qcow2",
            DiskType::Ova => "ova",
            DiskType::Vhdx => "vhdx",
        }
    }

    /// The disk type named `name` (exactly, lower case), if any.
    pub fn from_name(name: &str) -> Option<DiskType> {
        DiskType::ALL.into_iter().find(|t| t.name() == name)
    }

    /// Its media type: `application/vnd.lfedge.disk.layer.v1+NAME`.
    pub fn media_type(self) -> &'static str {
        match self {
            DiskType::Raw => "application/vnd.lfedge.disk.layer.v1+raw",
            DiskType::Vmdk => "application/vnd.lfedge.disk.layer.v1+vmdk",
            DiskType::Vhd => "application/vnd.lfedge.disk.layer.v1+vhd",
            DiskType::Iso => "application/vnd.lfedge.disk.layer.v1+iso",
            DiskType::Qcow => "application/vnd.lfedge.disk.layer.v1+qcow",
            DiskType::Qcow2 => "application/vnd.lfedge.disk.layer.v1+qcow2",
            DiskType::Ova => "application/vnd.lfedge.disk.layer.v1+ova",
            DiskType::Vhdx => "application/vnd.lfedge.disk.layer.v1+vhdx",
        }
    }

    /// The disk type of a disk media type, if it is one (`MimeToType`).
    pub fn from_media_type(mt: &str) -> Option<DiskType> {
        DiskType::ALL.into_iter().find(|t| t.media_type() == mt)
    }

    /// The eight names, for messages: `raw, vmdk, ...`.
    pub fn names() -> String {
        DiskType::ALL.map(DiskType::name).join(", ")
    }
}

impl fmt::Display for DiskType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Whether a manifest is an ECI: its config is an ECI config, or its config
/// or a layer carries an `org.lfedge.eci.mediaType` or `org.lfedge.eci.role`
/// annotation (lf-edge's Pusher puts both on every file in both formats;
/// its generated config is a plain OCI image config).
pub fn is_eci(doc: &Document) -> bool {
    let marked = |d: &super::Descriptor| {
        d.media_type == CONFIG
            || d.annotations.contains_key(ANNOTATION_MEDIA_TYPE)
            || d.annotations.contains_key(ANNOTATION_ROLE)
    };
    doc.config
        .iter()
        .chain(doc.layers.iter().flatten())
        .any(marked)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disk_types_round_trip_their_names_and_media_types() {
        for t in DiskType::ALL {
            assert_eq!(DiskType::from_name(t.name()), Some(t));
            assert_eq!(DiskType::from_media_type(t.media_type()), Some(t));
            assert!(t.media_type().ends_with(&format!("+{}", t.name())));
        }
        assert_eq!(DiskType::from_name("QCOW2"), None);
        assert_eq!(DiskType::from_name("vdi"), None);
        for r in [
            Role::Kernel,
            Role::Initrd,
            Role::RootDisk,
            Role::AdditionalDisk,
        ] {
            assert_eq!(Role::from_annotation(r.annotation()), Some(r));
        }
        assert_eq!(Role::from_annotation(""), None);
    }
}
