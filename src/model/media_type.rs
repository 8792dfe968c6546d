//! Media type constants: OCI and Docker envelopes, and the cocoonstack artifact types.

/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Docker v2 schema 2 manifest.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker v2 manifest list.
pub const DOCKER_INDEX: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// OCI image config.
pub const OCI_IMAGE_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// Docker image config.
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// The OCI empty descriptor's media type (content `{}`).
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
/// The `oci-layout` file's media type.
pub const OCI_LAYOUT_HEADER: &str = "application/vnd.oci.layout.header.v1+json";
/// OCI uncompressed layer.
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
/// OCI gzip layer.
pub const OCI_LAYER_TAR_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// OCI zstd layer.
pub const OCI_LAYER_TAR_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
/// Docker uncompressed layer (containerd's and containers/image's name for
/// it; skopeo's `docker-archive:` source labels such layers `.tar.gzip`).
pub const DOCKER_LAYER_TAR: &str = "application/vnd.docker.image.rootfs.diff.tar";
/// Docker gzip layer.
pub const DOCKER_LAYER_TAR_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// cocoonstack OS (cloud) disk image.
pub const ARTIFACT_OS_IMAGE: &str = "application/vnd.cocoonstack.os-image.v1+json";
/// Legacy name of [`ARTIFACT_OS_IMAGE`]; recognized, never written.
pub const ARTIFACT_WINDOWS_IMAGE: &str = "application/vnd.cocoonstack.windows-image.v1+json";
/// cocoonstack VM snapshot, one layer per file.
pub const ARTIFACT_SNAPSHOT: &str = "application/vnd.cocoonstack.snapshot.v1+json";
/// cocoonstack VM snapshot, chunked (cocoon-common).
pub const ARTIFACT_SNAPSHOT_V2: &str = "application/vnd.cocoonstack.snapshot.v2+json";
/// cocoonstack snapshot config blob (v1 and v2).
pub const SNAPSHOT_CONFIG: &str = "application/vnd.cocoonstack.snapshot.config.v1+json";
/// Artifact type of `epoch-store add` when none is given.
pub const ARTIFACT_FILES: &str = "application/vnd.epoch-store.files.v1";

/// qcow2 disk.
pub const DISK_QCOW2: &str = "application/vnd.cocoonstack.disk.qcow2";
/// One byte range of a split qcow2 disk.
pub const DISK_QCOW2_PART: &str = "application/vnd.cocoonstack.disk.qcow2.part";
/// raw disk.
pub const DISK_RAW: &str = "application/vnd.cocoonstack.disk.raw";
/// One byte range of a split raw disk.
pub const DISK_RAW_PART: &str = "application/vnd.cocoonstack.disk.raw.part";
/// Legacy Windows qcow2 disk.
pub const WINDOWS_DISK_QCOW2: &str = "application/vnd.cocoonstack.windows.disk.qcow2";
/// Legacy Windows qcow2 disk part.
pub const WINDOWS_DISK_QCOW2_PART: &str = "application/vnd.cocoonstack.windows.disk.qcow2.part";
/// Legacy Windows raw disk.
pub const WINDOWS_DISK_RAW: &str = "application/vnd.cocoonstack.windows.disk.raw";
/// Legacy Windows raw disk part.
pub const WINDOWS_DISK_RAW_PART: &str = "application/vnd.cocoonstack.windows.disk.raw.part";
/// VM config file (`config.json`).
pub const VM_CONFIG: &str = "application/vnd.cocoonstack.vm.config+json";
/// VM state file (`state.json`).
pub const VM_STATE: &str = "application/vnd.cocoonstack.vm.state+json";
/// Guest memory (`memory-ranges`).
pub const VM_MEMORY: &str = "application/vnd.cocoonstack.vm.memory";
/// cloud-init data disk (`cidata.img`).
pub const VM_CIDATA: &str = "application/vnd.cocoonstack.vm.cidata";
/// Anything else.
pub const GENERIC: &str = "application/octet-stream";
/// A tar stream.
pub const TAR: &str = "application/x-tar";

/// Whether `mt` is an image manifest (OCI or Docker).
pub fn is_manifest(mt: &str) -> bool {
    mt == OCI_MANIFEST || mt == DOCKER_MANIFEST
}

/// Whether `mt` is an image index (OCI index or Docker list).
pub fn is_index(mt: &str) -> bool {
    mt == OCI_INDEX || mt == DOCKER_INDEX
}

/// Whether `mt` is a document epoch-store parses to find children.
pub fn is_document(mt: &str) -> bool {
    is_manifest(mt) || is_index(mt)
}
