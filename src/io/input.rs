//! Opening the files a user names as input (`pack image FILE`, `add FILE`,
//! `import-tar FILE`): never blocking on a FIFO, never reading anything but
//! a regular file.

use std::fs::{File, Metadata, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::error::{Error, IoContext, Result};

/// Opens `path`, a file a user named as input, for reading, and returns it
/// with its (fstat) metadata: what is checked is what is read.
///
/// A symlink is followed (the user named it; files found *inside* a
/// directory or a layout are opened without following anything). The open
/// is non-blocking, so a FIFO with no writer does not hang it, and anything
/// but a regular file (FIFO, directory, socket, device) is refused before a
/// byte is read. On a regular file the non-blocking flag changes nothing.
///
/// # Errors
/// [`Error::NotRegularFile`] naming the path and what it is; I/O errors
/// opening it.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// let path = dir.path().join("disk.raw");
/// std::fs::write(&path, b"data")?;
/// let (_file, md) = epoch_store::io::input::open_input(&path)?;
/// assert_eq!(md.len(), 4);
/// assert!(epoch_store::io::input::open_input(dir.path()).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn open_input(path: &Path) -> Result<(File, Metadata)> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(path)
        .ctx("open", path)?;
    let md = file.metadata().ctx("stat", path)?;
    if !md.is_file() {
        return Err(Error::NotRegularFile {
            path: path.to_path_buf(),
            kind: crate::io::durable::kind_name(&md),
        });
    }
    Ok((file, md))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifos_and_directories_are_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o644),
            0,
        )
        .unwrap();
        for (p, kind) in [(&fifo, "FIFO"), (&dir.path().to_path_buf(), "directory")] {
            match open_input(p) {
                Err(Error::NotRegularFile { kind: k, .. }) => assert_eq!(k, kind),
                other => panic!("{p:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn symlinks_to_regular_files_are_followed() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        std::fs::write(&target, b"abc").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert_eq!(open_input(&link).unwrap().1.len(), 3);
    }
}
