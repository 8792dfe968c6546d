//! The one module allowed to map files into memory.
#![allow(unsafe_code)]

use std::fs::File;
use std::io;

/// Filesystems where a blob cannot change or vanish under a mapping except by
/// someone deliberately truncating it. Removable media (FAT, exFAT), FUSE and
/// network filesystems are read with `read(2)` instead: a pulled stick must
/// give an I/O error, not SIGBUS.
const LOCAL_FS_MAGIC: [u64; 8] = [
    0xEF53,      // ext2/3/4
    0x5846_5342, // xfs
    0x9123_683E, // btrfs
    0x0102_1994, // tmpfs
    0x794C_7630, // overlayfs
    0xF2F5_2010, // f2fs
    0x2FC1_2FC1, // zfs
    0x6165_6673, // bcachefs
];

/// Whether `file` lives on a local filesystem where mapping it is safe.
pub(crate) fn is_mappable(file: &File) -> bool {
    match rustix::fs::fstatfs(file) {
        Ok(st) => LOCAL_FS_MAGIC.contains(&(st.f_type as u64)),
        Err(_) => false,
    }
}

/// Calls `f` with successive windows of at most `window` bytes covering
/// `[start, start + len)` of `file`, each mapped, prefaulted, used and
/// unmapped in turn, so that resident memory stays bounded by one window
/// whatever the size.
pub(crate) fn for_each_window(
    file: &File,
    start: u64,
    len: u64,
    window: usize,
    f: &mut dyn FnMut(&[u8]) -> io::Result<()>,
) -> io::Result<()> {
    let mut done = 0u64;
    while done < len {
        let n = window.min((len - done) as usize);
        // SAFETY: memmap2's contract is that the mapped range is not modified
        // or truncated while mapped. Blobs are immutable once published (we
        // only ever create them by rename); files being packed are a snapshot
        // at rest, which the caller must not truncate meanwhile (documented on
        // `pack`). `is_mappable` keeps mapping to local filesystems, so a
        // pulled stick gives EIO through read(2) instead. A third party
        // truncating a file under us would be a deliberate attack, which we
        // accept as ripgrep does. memmap2 aligns the offset to a page itself.
        let map = unsafe {
            memmap2::MmapOptions::new()
                .offset(start + done)
                .len(n)
                .populate()
                .map(file)?
        };
        let _ = map.advise(memmap2::Advice::Sequential);
        f(&map)?;
        done += n as u64;
    }
    Ok(())
}
