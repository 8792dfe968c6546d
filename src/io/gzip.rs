//! gzip on every core: the stream is cut into blocks of [`BLOCK`] input
//! bytes, each compressed on the work queue's cores with libdeflate into a
//! gzip member of its own (header, deflate data, CRC-32 and length), and
//! the members written in order while the next blocks are read, so that
//! the caller's reading and hashing overlap the compression.
//!
//! A stream of gzip members is one gzip file (RFC 1952 §2.2): `gzip -d`,
//! Go's `compress/gzip` (what Docker, containerd, umoci and skopeo read
//! layers with), Python's `gzip` and flate2's `MultiGzDecoder` read it
//! whole; eStargz layers are built the same way. The bytes depend on the
//! input and the level only, never on the number of cores. Memory stays at
//! a few blocks per core.

use std::cell::RefCell;
use std::io::{self, Write};

use libdeflater::{CompressionLvl, Compressor};

use super::schedule::InOrder;

/// Input bytes compressed as one gzip member.
pub const BLOCK: usize = 1 << 20;

/// The highest level libdeflate has.
pub const MAX_LEVEL: u32 = 12;

/// A writer that gzips what it is given, [`BLOCK`] by [`BLOCK`], on every
/// core. Call [`ParallelGzip::finish`] to write the rest.
pub struct ParallelGzip<W: Write> {
    out: W,
    level: i32,
    /// The block being filled.
    current: Vec<u8>,
    /// Blocks being compressed.
    pipeline: InOrder<io::Result<Vec<u8>>>,
    /// Blocks handed to the cores so far.
    blocks: u64,
    /// Members written so far.
    members: u64,
}

impl<W: Write> std::fmt::Debug for ParallelGzip<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParallelGzip")
            .field("level", &self.level)
            .field("members", &self.members)
            .finish_non_exhaustive()
    }
}

impl<W: Write> ParallelGzip<W> {
    /// A writer of gzip at `level` (0-12, libdeflate's; above 12 is 12)
    /// into `out`.
    pub fn new(out: W, level: u32) -> ParallelGzip<W> {
        ParallelGzip {
            out,
            level: level.min(MAX_LEVEL) as i32,
            current: Vec::with_capacity(BLOCK),
            pipeline: InOrder::new(3 * rayon::current_num_threads().max(1)),
            blocks: 0,
            members: 0,
        }
    }

    /// Compresses what is left, writes it and returns the writer written
    /// to. An empty input gives one empty member.
    ///
    /// # Errors
    /// Errors of the writer.
    pub fn finish(mut self) -> io::Result<W> {
        if !self.current.is_empty() || self.blocks == 0 {
            self.submit_current()?;
        }
        for member in self.pipeline.finish() {
            self.write_member(member)?;
        }
        self.out.flush()?;
        Ok(self.out)
    }

    /// Hands the current block to the cores; writes the members now due.
    fn submit_current(&mut self) -> io::Result<()> {
        let block = std::mem::replace(&mut self.current, Vec::with_capacity(BLOCK));
        let level = self.level;
        self.blocks += 1;
        let due = self.pipeline.submit(move || compress(&block, level));
        for member in due {
            self.write_member(member)?;
        }
        Ok(())
    }

    fn write_member(&mut self, member: io::Result<Vec<u8>>) -> io::Result<()> {
        self.out.write_all(&member?)?;
        self.members += 1;
        Ok(())
    }
}

impl<W: Write> Write for ParallelGzip<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = buf.len().min(BLOCK - self.current.len());
        self.current.extend_from_slice(&buf[..n]);
        if self.current.len() == BLOCK {
            self.submit_current()?;
        }
        Ok(n)
    }

    /// Writes nothing early: the blocks are cut at fixed input offsets, so
    /// that the output depends on the input alone.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

thread_local! {
    /// Each worker's compressor, kept for its level.
    static COMPRESSOR: RefCell<Option<(i32, Compressor)>> = const { RefCell::new(None) };
}

/// `data` as one gzip member at `level`.
fn compress(data: &[u8], level: i32) -> io::Result<Vec<u8>> {
    COMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.as_ref().is_none_or(|(l, _)| *l != level) {
            let lvl = CompressionLvl::new(level)
                .map_err(|e| io::Error::other(format!("gzip level {level}: {e:?}")))?;
            *slot = Some((level, Compressor::new(lvl)));
        }
        let (_, c) = slot.as_mut().expect("set above");
        let mut out = vec![0u8; c.gzip_compress_bound(data.len())];
        let n = c
            .gzip_compress(data, &mut out)
            .map_err(|e| io::Error::other(format!("gzip: {e:?}")))?;
        out.truncate(n);
        Ok(out)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn gunzip(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(data)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    fn gzip(data: &[u8], chunk: usize, level: u32) -> Vec<u8> {
        let mut gz = ParallelGzip::new(Vec::new(), level);
        for piece in data.chunks(chunk.max(1)) {
            gz.write_all(piece).unwrap();
        }
        gz.finish().unwrap()
    }

    #[test]
    fn a_gzip_reader_gets_the_input_back() {
        let mut data = Vec::new();
        for i in 0..(3 * BLOCK + 12345) {
            data.push(((i * 7919) % 251) as u8 ^ (i >> 13) as u8);
        }
        for len in [0, 1, BLOCK - 1, BLOCK, BLOCK + 1, data.len()] {
            let out = gzip(&data[..len], 65536, 3);
            assert_eq!(&out[..2], [0x1f, 0x8b], "{len} bytes");
            assert_eq!(gunzip(&out), &data[..len], "{len} bytes");
        }
    }

    #[test]
    fn the_output_does_not_depend_on_how_the_input_was_written() {
        let data: Vec<u8> = (0..(2 * BLOCK + 99)).map(|i| (i % 97) as u8).collect();
        let whole = gzip(&data, data.len(), 6);
        assert_eq!(gzip(&data, 4096, 6), whole);
        assert_eq!(gzip(&data, 333, 6), whole);
        assert!(whole.len() < data.len() / 10, "it compresses");
        assert_ne!(gzip(&data, 4096, 1), whole, "the level matters");
    }
}
