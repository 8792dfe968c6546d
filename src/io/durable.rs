//! The publish protocol's primitives (see `docs/durability.md`): temp files,
//! fsync, rename without clobbering, directory fsync. Opening files that
//! may be hostile is [`input`](crate::io::input)'s.
//!
//! Every file epoch-store writes is a [`TempFile`] (in the layout's private
//! directory, or beside its destination for files written outside a layout),
//! synced and then renamed into place by [`publish_noclobber`] or
//! [`replace_name`] (or [`replace`] for small documents); nothing writes a
//! final name in place.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::error::{Error, IoContext, Result};

/// Random characters in the name of a temp file written beside its
/// destination (`.NAME.XXXXXX.part`, see [`TempFile::beside`]).
pub(crate) const BESIDE_RANDOM_LEN: usize = 6;

/// A file being written under a temp name. Dropped without being
/// published, it is removed.
pub(crate) struct TempFile {
    inner: tempfile::NamedTempFile,
}

impl TempFile {
    /// Creates a new, empty temp file (`tmp-XXXXXX.part`, mode 0644 less
    /// umask) in `dir`, the layout's private temp directory.
    pub(crate) fn new_in(dir: &Path) -> Result<TempFile> {
        TempFile::create(dir, "tmp-", 6, 0o644)
    }

    /// Creates a new, empty temp file beside the file `name` it will become,
    /// in that file's directory `dir`: `.NAME.XXXXXX.part`, hidden, so that a
    /// rerun can tell its own leftovers apart from the user's files.
    pub(crate) fn beside(dir: &Path, name: &str, mode: u32) -> Result<TempFile> {
        TempFile::create(dir, &format!(".{name}."), BESIDE_RANDOM_LEN, mode)
    }

    fn create(dir: &Path, prefix: &str, random: usize, mode: u32) -> Result<TempFile> {
        let inner = tempfile::Builder::new()
            .prefix(prefix)
            .suffix(".part")
            .rand_bytes(random)
            .permissions(fs::Permissions::from_mode(mode))
            .tempfile_in(dir)
            .ctx("create temp file in", dir)?;
        Ok(TempFile { inner })
    }

    /// Opens, or creates, the temp file `name` in `dir`, where an earlier
    /// write that was interrupted left what it had written: returns it with
    /// its length, positioned at its end. It is locked (exclusively,
    /// without waiting) so that two processes never append to it at once:
    /// `None` when another holds it. Nothing is followed.
    pub(crate) fn resume(dir: &Path, name: &str) -> Result<Option<(TempFile, u64)>> {
        use std::io::Seek;
        use std::os::unix::fs::OpenOptionsExt;
        let path = dir.join(name);
        let file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o644)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(&path)
            .ctx("open", &path)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => return Ok(None),
            Err(fs::TryLockError::Error(e)) => return Err(Error::io("lock", &path, e)),
        }
        let md = file.metadata().ctx("stat", &path)?;
        if !md.is_file() {
            return Err(Error::NotRegularFile {
                path,
                kind: crate::io::input::kind_name(&md),
            });
        }
        (&file).seek(io::SeekFrom::End(0)).ctx("seek", &path)?;
        let inner = tempfile::NamedTempFile::from_parts(
            file,
            tempfile::TempPath::try_from_path(&path).ctx("open", &path)?,
        );
        Ok(Some((TempFile { inner }, md.len())))
    }

    /// Leaves the file where it is, its data synced, for a later
    /// [`TempFile::resume`] (gc removes it once older than its grace).
    pub(crate) fn keep(self) -> Result<()> {
        self.inner.as_file().sync_data().ctx("fsync", self.path())?;
        let _ = self.inner.into_temp_path().keep();
        Ok(())
    }

    /// The temp file's current path.
    pub(crate) fn path(&self) -> &Path {
        self.inner.path()
    }

    /// The open file.
    pub(crate) fn file(&self) -> &File {
        self.inner.as_file()
    }

    /// Writes all of `buf`, naming the temp file on error.
    pub(crate) fn write_all(&mut self, buf: &[u8]) -> Result<()> {
        // Through the plain File: NamedTempFile's own Write adds the path to
        // the message, which our error already names.
        self.inner
            .as_file()
            .write_all(buf)
            .ctx("write", self.inner.path())
    }

    /// Flushes the file's data and metadata to stable storage. An error here is
    /// final: the caller must not publish the file (the kernel may have dropped
    /// the dirty pages, and a second fsync can falsely succeed).
    pub(crate) fn sync(&self) -> Result<()> {
        self.inner.as_file().sync_all().ctx("fsync", self.path())
    }

    /// Forgets the temp file after it has been renamed away.
    fn disarm(self) {
        // The path no longer exists; keep() only stops the drop-time unlink.
        let _ = self.inner.into_temp_path().keep();
    }
}

/// What [`publish_noclobber`] found at the destination.
pub(crate) enum Published {
    /// Our file now has the destination name.
    New,
    /// A file of that name already existed; our temp file is handed back
    /// (dropping it removes it).
    Existed(TempFile),
}

/// How a filesystem takes a rename that must not replace an existing file,
/// best first. Learned once per filesystem (device) and remembered for the
/// life of the process, so that a stick that refuses the first way costs
/// one refused call, not one per file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum NoClobber {
    /// `renameat2(RENAME_NOREPLACE)`: atomic.
    Renameat2,
    /// `link` then `unlink` of the temp name: atomic too (the link fails
    /// with `EEXIST`), for filesystems without the rename flag (many FUSE
    /// and network filesystems).
    Link,
    /// Check that the name is free, then rename: what is left on
    /// filesystems with neither (FAT behind FUSE). Not atomic: a file
    /// created under the same name in between is replaced. For blobs that
    /// is harmless (a blob's name determines its bytes); for unpacked
    /// files it is the one race left on such media.
    CheckThenRename,
}

/// The way each device (`st_dev`) was found to take [`NoClobber`] renames.
static NO_CLOBBER: Mutex<BTreeMap<u64, NoClobber>> = Mutex::new(BTreeMap::new());

/// The way to start with for `file`'s device. While no device has refused
/// `renameat2`, that is all there is to know, so the common case costs no
/// `fstat`; `None` when the device could not be told.
fn no_clobber_way(file: &File) -> (Option<u64>, NoClobber) {
    let known = NO_CLOBBER.lock().unwrap_or_else(|p| p.into_inner());
    if known.is_empty() {
        return (None, NoClobber::Renameat2);
    }
    let dev = file.metadata().ok().map(|md| md.dev());
    let way = dev.and_then(|d| known.get(&d).copied());
    (dev, way.unwrap_or(NoClobber::Renameat2))
}

fn refused(file: &File, dev: Option<u64>, next: NoClobber) {
    let Some(dev) = dev.or_else(|| file.metadata().ok().map(|md| md.dev())) else {
        return;
    };
    let mut known = NO_CLOBBER.lock().unwrap_or_else(|p| p.into_inner());
    let way = known.entry(dev).or_insert(next);
    *way = (*way).max(next);
}

/// Renames a synced temp file to `dest` without replacing an existing file.
///
/// Tries the [`NoClobber`] ways in order, from the best the filesystem
/// is known to take: `renameat2(RENAME_NOREPLACE)`; where the filesystem
/// refuses that flag (`EINVAL`, `ENOSYS`, `EOPNOTSUPP`), `link` + `unlink`;
/// where it has no hard links either, check-then-rename. The caller fsyncs
/// `dest`'s directory.
pub(crate) fn publish_noclobber(tmp: TempFile, dest: &Path) -> Result<Published> {
    use rustix::fs::{CWD, RenameFlags, renameat_with};
    use rustix::io::Errno;
    let (dev, mut way) = no_clobber_way(tmp.file());
    loop {
        match way {
            NoClobber::Renameat2 => {
                match renameat_with(CWD, tmp.path(), CWD, dest, RenameFlags::NOREPLACE) {
                    Ok(()) => break,
                    Err(Errno::EXIST) => return Ok(Published::Existed(tmp)),
                    Err(Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP) => way = NoClobber::Link,
                    Err(e) => return Err(Error::io("rename", dest, e.into())),
                }
            }
            NoClobber::Link => match fs::hard_link(tmp.path(), dest) {
                Ok(()) => {
                    // The file is published under `dest`; the temp name
                    // goes now (a failure leaves a temp file, which gc or
                    // the next unpack removes, never a damaged `dest`).
                    let _ = fs::remove_file(tmp.path());
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    return Ok(Published::Existed(tmp));
                }
                Err(e)
                    if matches!(
                        Errno::from_io_error(&e),
                        Some(Errno::PERM | Errno::OPNOTSUPP | Errno::NOSYS | Errno::MLINK)
                    ) =>
                {
                    way = NoClobber::CheckThenRename;
                }
                Err(e) => return Err(Error::io("link", dest, e)),
            },
            NoClobber::CheckThenRename => {
                if fs::symlink_metadata(dest).is_ok() {
                    return Ok(Published::Existed(tmp));
                }
                fs::rename(tmp.path(), dest).ctx("rename", dest)?;
                break;
            }
        }
        refused(tmp.file(), dev, way);
    }
    tmp.disarm();
    Ok(Published::New)
}

/// Renames a synced temp file over `dest`, replacing whatever was there.
/// The caller fsyncs `dest`'s directory.
pub(crate) fn replace_name(tmp: TempFile, dest: &Path) -> Result<()> {
    fs::rename(tmp.path(), dest).ctx("rename", dest)?;
    tmp.disarm();
    Ok(())
}

/// Writes `bytes` to `dest` atomically and durably: temp file in `tmp_dir`,
/// fsync, rename over `dest`, fsync `dest`'s directory.
pub(crate) fn replace(tmp_dir: &Path, dest: &Path, bytes: &[u8]) -> Result<()> {
    replace_before_dir_sync(tmp_dir, dest, bytes)?;
    sync_dir(parent(dest))
}

/// [`replace`] up to and including the rename: the new content is visible
/// when this returns, and durable once the caller has fsynced the directory.
pub(crate) fn replace_before_dir_sync(tmp_dir: &Path, dest: &Path, bytes: &[u8]) -> Result<()> {
    let mut tmp = TempFile::new_in(tmp_dir)?;
    tmp.write_all(bytes)?;
    tmp.sync()?;
    replace_name(tmp, dest)
}

/// The directory that holds `path`.
pub(crate) fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Fsyncs a directory so that the names created or removed in it are durable.
///
/// `EINVAL` is tolerated (as borg does): SMB and some FUSE filesystems refuse
/// fsync on a directory, and there is nothing more we can do there. Every
/// other error is reported.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    let f = File::open(dir).ctx("open directory", dir)?;
    match f.sync_all() {
        Err(e) if e.raw_os_error() == Some(rustix::io::Errno::INVAL.raw_os_error()) => Ok(()),
        r => r.ctx("fsync directory", dir),
    }
}

/// Creates `dir` (and missing parents), fsyncing each parent whose entries changed.
pub(crate) fn create_dir_durable(dir: &Path) -> Result<()> {
    let mut missing: Vec<PathBuf> = Vec::new();
    let mut cur = Some(dir);
    while let Some(d) = cur {
        if d.as_os_str().is_empty() || d.exists() {
            break;
        }
        missing.push(d.to_path_buf());
        cur = d.parent();
    }
    for d in missing.iter().rev() {
        match fs::create_dir(d) {
            Ok(()) => sync_dir(parent(d))?,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(Error::io("create directory", d, e)),
        }
    }
    Ok(())
}

/// Whether `path` is a real directory (`false`: it does not exist), never
/// following a symlink.
///
/// # Errors
/// [`Error::LayoutDirectory`] with `advice` when it is a symlink or not a
/// directory; I/O errors.
pub(crate) fn real_dir(path: &Path, advice: &'static str) -> Result<bool> {
    match fs::symlink_metadata(path) {
        Ok(md) if md.is_dir() => Ok(true),
        Ok(md) => Err(Error::LayoutDirectory {
            path: path.to_path_buf(),
            kind: crate::io::input::kind_name(&md),
            advice,
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(Error::io("stat", path, e)),
    }
}

/// Sets a file's mtime to now, so that gc's grace period counts from this
/// use. The kernel's clock stamps it (`UTIME_NOW`), not the process's: a
/// process under clock skew or faketime must not stamp a fresh use in the
/// past (or the future). Never follows a symlink. Permission errors and
/// read-only media are ignored: the blob is still valid.
pub(crate) fn touch(path: &Path) -> Result<()> {
    use rustix::fs::{AtFlags, CWD, Timespec, Timestamps, UTIME_NOW, UTIME_OMIT, utimensat};
    use rustix::io::Errno;
    let times = Timestamps {
        last_access: Timespec {
            tv_sec: 0,
            tv_nsec: UTIME_OMIT,
        },
        last_modification: Timespec {
            tv_sec: 0,
            tv_nsec: UTIME_NOW,
        },
    };
    match utimensat(CWD, path, &times, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(()) | Err(Errno::ACCESS | Errno::PERM | Errno::ROFS) => Ok(()),
        Err(e) => Err(Error::io("refresh mtime of", path, e.into())),
    }
}

/// Writes a file outside the layout (an export) as the layout's own files
/// are published: `write` fills a buffered [`TempFile::beside`] `dest`
/// (mode 0644), which is then flushed, fsynced, renamed over `dest`, and the
/// directory fsynced. On error the temp file is removed and `dest` is
/// untouched. Returns the bytes written.
///
/// # Errors
/// What `write` returns; I/O errors creating, writing, syncing, renaming.
pub(crate) fn write_file_replacing(
    dest: &Path,
    write: impl FnOnce(&mut dyn Write) -> Result<()>,
) -> Result<u64> {
    write_file_replacing_mode(dest, 0o644, write)
}

/// [`write_file_replacing`] with the new file's `mode` (0600 for one that
/// holds credentials: it is never readable by others, not even briefly).
pub(crate) fn write_file_replacing_mode(
    dest: &Path,
    mode: u32,
    write: impl FnOnce(&mut dyn Write) -> Result<()>,
) -> Result<u64> {
    let dir = parent(dest);
    let base = dest
        .file_name()
        .map_or_else(|| "export".into(), |n| n.to_string_lossy().into_owned());
    let tmp = TempFile::beside(dir, &base, mode)?;
    let count = {
        let mut out =
            crate::io::counting::Counting::new(io::BufWriter::with_capacity(1 << 20, tmp.file()));
        write(&mut out)?;
        out.inner
            .into_inner()
            .map_err(|e| Error::io("write", tmp.path(), e.into_error()))?;
        out.count
    };
    tmp.sync()?;
    replace_name(tmp, dest)?;
    sync_dir(dir)?;
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_noclobber_keeps_the_existing_file() -> Result<()> {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("name");
        fs::write(&dest, b"first").unwrap();
        let mut tmp = TempFile::new_in(dir.path())?;
        tmp.write_all(b"second")?;
        tmp.sync()?;
        let tmp_path = tmp.path().to_path_buf();
        assert!(matches!(
            publish_noclobber(tmp, &dest)?,
            Published::Existed(_)
        ));
        assert_eq!(fs::read(&dest).unwrap(), b"first");
        assert!(!tmp_path.exists(), "the discarded temp file is removed");
        Ok(())
    }

    #[test]
    fn replace_writes_new_content() -> Result<()> {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("index.json");
        replace(dir.path(), &dest, b"one")?;
        replace(dir.path(), &dest, b"two")?;
        assert_eq!(fs::read(&dest).unwrap(), b"two");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
        Ok(())
    }
}
