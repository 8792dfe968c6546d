//! Cross-process locks on files in the layout's private directory.
//!
//! OS-level locks (`flock`) die with their process, so a killed writer never
//! leaves a lock that needs a human. Lock files are never deleted.

use std::fs::{File, OpenOptions, TryLockError};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::error::{Error, IoContext, Result};

/// Name of the lock writers hold shared for their whole run and gc exclusively.
pub(crate) const GC_LOCK: &str = "gc.lock";
/// Name of the lock held around every read-modify-write of `index.json`.
pub(crate) const INDEX_LOCK: &str = "index.lock";

/// Shared or exclusive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Many holders at once (writers adding blobs).
    Shared,
    /// One holder (gc sweeping, an `index.json` update).
    Exclusive,
}

/// A held lock; released when dropped.
#[derive(Debug)]
pub(crate) struct Lock {
    _file: File,
}

/// Takes the lock on `path`, waiting for other holders as needed.
pub(crate) fn acquire(path: &Path, mode: Mode) -> Result<Lock> {
    acquire_noting(path, mode, &|_| {})
}

/// [`acquire`], but when the lock is held elsewhere, first calls `waiting`
/// with the ids of the processes that hold it (as far as `/proc/locks`
/// tells; empty if unknown), so that a user can be told what is waited for.
pub(crate) fn acquire_noting(path: &Path, mode: Mode, waiting: &dyn Fn(&[u32])) -> Result<Lock> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .ctx("open lock file", path)?;
    let tried = match mode {
        Mode::Shared => file.try_lock_shared(),
        Mode::Exclusive => file.try_lock(),
    };
    match tried {
        Ok(()) => return Ok(Lock { _file: file }),
        Err(TryLockError::WouldBlock) => waiting(&holders(&file)),
        Err(TryLockError::Error(e)) => return Err(Error::io("lock", path, e)),
    }
    match mode {
        Mode::Shared => file.lock_shared(),
        Mode::Exclusive => file.lock(),
    }
    .ctx("lock", path)?;
    Ok(Lock { _file: file })
}

/// "process 123", "processes 1, 2", or "another epoch-store process".
pub(crate) fn describe(pids: &[u32]) -> String {
    match pids {
        [] => "another epoch-store process".to_string(),
        [pid] => format!("process {pid}"),
        pids => {
            let list: Vec<String> = pids.iter().map(u32::to_string).collect();
            format!("processes {}", list.join(", "))
        }
    }
}

/// The processes holding a lock on `file`, from `/proc/locks` (Linux; an
/// empty list elsewhere or when it cannot be read).
fn holders(file: &File) -> Vec<u32> {
    let Ok(md) = file.metadata() else {
        return vec![];
    };
    let dev = md.dev();
    let id = format!(
        "{:02x}:{:02x}:{}",
        rustix::fs::major(dev),
        rustix::fs::minor(dev),
        md.ino()
    );
    let me = std::process::id();
    let Ok(table) = std::fs::read_to_string("/proc/locks") else {
        return vec![];
    };
    let mut pids: Vec<u32> = table
        .lines()
        .filter_map(|line| {
            // "1: FLOCK  ADVISORY  READ 32284 fe:00:9977898 0 EOF"
            let fields: Vec<&str> = line.split_whitespace().collect();
            let at = fields.iter().position(|f| *f == id)?;
            fields.get(at.checked_sub(1)?)?.parse().ok()
        })
        .filter(|&pid| pid != me)
        .collect();
    pids.sort_unstable();
    pids.dedup();
    pids
}
