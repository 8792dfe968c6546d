//! The one module allowed to map files into memory.
#![allow(unsafe_code)]

use std::fs::File;
use std::io;

/// Whether `file` lives on a local filesystem where mapping it is safe
/// (the table is [`filesystem`](crate::io::filesystem)'s).
pub(crate) fn is_mappable(file: &File) -> bool {
    crate::io::filesystem::is_mappable(file)
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
        // `Writer::put_stored` in store/writer.rs). `is_mappable` keeps
        // mapping to local filesystems, so a pulled stick gives EIO through
        // read(2) instead. A third party
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
