//! Opening files that may be hostile: those a user names as input (`pack
//! image FILE`, `add FILE`, `import-tar FILE`: symlinks followed) and those
//! found inside a directory or layout (never followed); never blocking on a
//! FIFO, never reading anything but a regular file, never more than a limit
//! into memory.

use std::fs::{self, File, Metadata, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
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
    regular(file, path)
}

/// `file` with its (fstat) metadata, if it is a regular file: what is
/// checked is what was opened, never the path again.
fn regular(file: File, path: &Path) -> Result<(File, Metadata)> {
    let md = file.metadata().ctx("stat", path)?;
    if !md.is_file() {
        return Err(Error::NotRegularFile {
            path: path.to_path_buf(),
            kind: kind_name(&md),
        });
    }
    Ok((file, md))
}

/// A short name for what a non-regular directory entry is.
pub(crate) fn kind_name(md: &Metadata) -> &'static str {
    type_name(md.file_type())
}

/// A short name for a file type ("symlink", "directory", "FIFO", ...), for
/// messages only: code decides on the type itself.
pub(crate) fn type_name(t: fs::FileType) -> &'static str {
    if t.is_symlink() {
        "symlink"
    } else if t.is_dir() {
        "directory"
    } else if t.is_fifo() {
        "FIFO"
    } else if t.is_socket() {
        "socket"
    } else if t.is_block_device() || t.is_char_device() {
        "device"
    } else {
        "regular file"
    }
}

/// Opens a file that must be a regular file, never following a symlink and
/// never blocking on a FIFO; returns it with its (fstat) metadata.
///
/// # Errors
/// [`Error::NotRegularFile`] for symlinks, directories, FIFOs, sockets and devices.
pub(crate) fn open_regular(path: &Path) -> Result<(File, Metadata)> {
    let flags = rustix::fs::OFlags::NOFOLLOW.bits() | rustix::fs::OFlags::NONBLOCK.bits();
    let file = match OpenOptions::new()
        .read(true)
        .custom_flags(flags as i32)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) => {
            return Err(Error::NotRegularFile {
                path: path.to_path_buf(),
                kind: "symlink",
            });
        }
        Err(e) => return Err(Error::io("open", path, e)),
    };
    regular(file, path)
}

/// Reads a whole regular file of at most `limit` bytes into memory.
pub(crate) fn read_capped(path: &Path, limit: u64, what: &str) -> Result<Vec<u8>> {
    let (file, md) = open_regular(path)?;
    if md.len() > limit {
        return Err(Error::TooLarge {
            what: what.to_string(),
            size: md.len(),
            limit,
        });
    }
    let mut buf = Vec::with_capacity(md.len() as usize);
    file.take(limit.saturating_add(1))
        .read_to_end(&mut buf)
        .ctx("read", path)?;
    if buf.len() as u64 > limit {
        return Err(Error::TooLarge {
            what: what.to_string(),
            size: buf.len() as u64,
            limit,
        });
    }
    Ok(buf)
}

/// What is at a path that should be a regular file of a known size (a
/// blob), judged without following anything: the one "present, regular,
/// right size" check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FileState {
    /// A regular file of the expected size.
    Present,
    /// Nothing there.
    Missing,
    /// Something that is not a regular file (a symlink, a directory, ...).
    NotRegular(&'static str),
    /// A regular file of another size (the size it has).
    WrongSize(u64),
}

/// Judges `path` against `size` (see [`FileState`]).
///
/// # Errors
/// I/O errors other than "not found" from `lstat`.
pub(crate) fn file_state(path: &Path, size: u64) -> Result<FileState> {
    match fs::symlink_metadata(path) {
        Ok(md) if !md.is_file() => Ok(FileState::NotRegular(kind_name(&md))),
        Ok(md) if md.len() != size => Ok(FileState::WrongSize(md.len())),
        Ok(_) => Ok(FileState::Present),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(FileState::Missing),
        Err(e) => Err(Error::io("stat", path, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mkfifo(path: &Path) {
        let mode = rustix::fs::Mode::from_raw_mode(0o644);
        rustix::fs::mknodat(rustix::fs::CWD, path, rustix::fs::FileType::Fifo, mode, 0).unwrap();
    }

    #[test]
    fn fifos_and_directories_are_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        mkfifo(&fifo);
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

    #[test]
    fn open_regular_refuses_symlinks_and_fifos() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        fs::write(&target, b"secret").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let fifo = dir.path().join("fifo");
        mkfifo(&fifo);
        for (p, kind) in [
            (&link, "symlink"),
            (&fifo, "FIFO"),
            (&dir.path().to_path_buf(), "directory"),
        ] {
            match open_regular(p) {
                Err(Error::NotRegularFile { kind: k, .. }) => assert_eq!(k, kind),
                other => panic!("{p:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn read_capped_refuses_large_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("big");
        fs::write(&p, vec![b'x'; 100]).unwrap();
        assert!(matches!(
            read_capped(&p, 99, "big"),
            Err(Error::TooLarge { size: 100, .. })
        ));
        assert_eq!(read_capped(&p, 100, "big").unwrap().len(), 100);
    }
}
