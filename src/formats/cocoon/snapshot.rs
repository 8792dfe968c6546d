//! cocoonstack VM snapshots as OCI artifacts, as cocoon-common writes and
//! reads them (`docs/cocoon-snapshot-format.md`): v1 stores one layer per
//! file; v2 cuts files larger than the chunk size at fixed offsets of their
//! stored stream, lists the chunk digests in `files[name].chunks`, and marks
//! itself v2 only when some file was split. Sparse files are stored compacted
//! (data extents back to back) with cocoon's sparse map in the config.

/// Annotation: a chunk's zero-based index, on files of two or more chunks.
pub const CHUNK_INDEX: &str = "cocoonstack.chunk.index";
/// Annotation: a file's number of chunks, on files of two or more chunks.
pub const CHUNK_COUNT: &str = "cocoonstack.chunk.count";
/// Largest snapshot config read into memory (as cocoon-common).
pub const CONFIG_LIMIT: u64 = 64 << 20;
/// Files smaller than this are never compressed (as cocoon-common).
pub const COMPRESS_MIN: u64 = 1 << 20;
/// Largest chunk size cocoon-common accepts (4096 MiB).
pub const MAX_CHUNK_SIZE: u64 = 4096 << 20;

/// v1 (one layer per file) or v2 (chunked).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// One layer per file, for readers that predate chunks.
    V1,
    /// Files larger than the chunk size are cut into chunks.
    V2,
}

/// How to pack a snapshot directory.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct PackOptions {
    /// v1 or v2.
    pub format: Format,
    /// v2: the chunk size (files larger than this are cut).
    pub chunk_size: u64,
    /// Free-text description, stored in the config and as an annotation.
    pub description: Option<String>,
    /// v2: zstd level for files of at least [`COMPRESS_MIN`] bytes.
    pub zstd_level: Option<i32>,
    /// [`pack`] without a `snapshot.json`: read CPU and memory from a
    /// `config.json` in the directory, which must then be Cloud
    /// Hypervisor's (default). `false`: `config.json` is packed as a plain
    /// file and the config records no CPU or memory.
    pub ch_config: bool,
}

impl Default for PackOptions {
    fn default() -> Self {
        PackOptions {
            format: Format::V2,
            chunk_size: 512 << 20,
            description: None,
            zstd_level: None,
            ch_config: true,
        }
    }
}

impl PackOptions {
    /// Sets the format.
    pub fn format(mut self, format: Format) -> Self {
        self.format = format;
        self
    }
    /// Sets the v2 chunk size.
    pub fn chunk_size(mut self, size: u64) -> Self {
        self.chunk_size = size;
        self
    }
    /// Compresses files of at least [`COMPRESS_MIN`] bytes with zstd (v2 only).
    pub fn zstd_level(mut self, level: Option<i32>) -> Self {
        self.zstd_level = level;
        self
    }
    /// Sets the description.
    pub fn description(mut self, text: Option<String>) -> Self {
        self.description = text;
        self
    }
    /// Sets [`PackOptions::ch_config`].
    pub fn ch_config(mut self, read: bool) -> Self {
        self.ch_config = read;
        self
    }
}

mod pack;
mod plan;
mod scan;
mod unpack;

pub(crate) use pack::{
    FileSource, StoredFile, layer_media_type, store_files, write_snapshot_manifest,
};
pub use pack::{Packed, pack};
pub use plan::{PlannedFile, SnapshotPlan, plan};
pub use unpack::unpack;
