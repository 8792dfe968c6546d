//! Cross-process locks on files in the layout's private directory.
//!
//! OS-level locks (`flock`) die with their process, so a killed writer never
//! leaves a lock that needs a human. Lock files are never deleted.

use std::fs::{File, OpenOptions};
use std::path::Path;

use crate::error::{IoContext, Result};

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
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .ctx("open lock file", path)?;
    match mode {
        Mode::Shared => file.lock_shared(),
        Mode::Exclusive => file.lock(),
    }
    .ctx("lock", path)?;
    Ok(Lock { _file: file })
}
