//! cocoonstack's artifacts, as cocoon-common writes and reads them
//! (`docs/cocoon-snapshot-format.md`):
//!
//! - [`config`]: the snapshot config blob and file-name conventions;
//! - [`snapshot`]: VM snapshot directories packed into and unpacked from
//!   the layout;
//! - [`tar`] and [`stream`]: cocoon's `snapshot export` tar stream, its
//!   records, and its import into and export from the layout;
//! - [`os_image`]: OS disk images split into parts.

pub mod config;
pub mod os_image;
pub mod snapshot;
pub mod stream;
pub mod tar;

/// How [`snapshot::unpack`] and [`os_image::unpack`] treat the target.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct UnpackOptions {
    /// Replace files already in the target directory (default: refuse
    /// them, unless a killed unpack of the same manifest left them).
    pub force: bool,
}

impl UnpackOptions {
    /// Sets [`UnpackOptions::force`].
    pub fn force(mut self, force: bool) -> Self {
        self.force = force;
        self
    }
}
