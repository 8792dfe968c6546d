//! A writer that counts what goes through it.

use std::io::{self, Write};

/// A writer that counts the bytes written through it (what an export
/// wrote to a pipe, say).
#[derive(Debug)]
pub struct Counting<W> {
    /// The writer written to.
    pub inner: W,
    /// Bytes written so far.
    pub count: u64,
}

impl<W> Counting<W> {
    /// Counts from zero.
    pub fn new(inner: W) -> Counting<W> {
        Counting { inner, count: 0 }
    }
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
