//! gzip on every core: one gzip member whose deflate stream is made of
//! blocks compressed independently and in parallel (pigz's layout, without
//! its shared dictionaries), so that any gzip reader reads it and the
//! output is the same for the same input whatever the number of cores.
//!
//! Each block of [`BLOCK`] input bytes is deflated on its own and ended with
//! a sync flush (an empty stored block), which leaves the stream on a byte
//! boundary with no final bit set; the blocks are written in order, then an
//! empty final block, then the CRC-32 (combined from the blocks' CRCs) and
//! the length. A batch of blocks is compressed on the work queue while the
//! caller waits, so memory stays at a few blocks per core.

use std::io::{self, Write};

use flate2::{Compress, Compression, Crc, FlushCompress, Status};

use super::schedule::{Workers, by_size};

/// Input bytes deflated as one independent block.
pub const BLOCK: usize = 1 << 20;

/// The gzip header: deflate, no flags, mtime 0, no extra flags, OS unknown
/// (255, as Go's `compress/gzip` writes it), so that the same layer gives
/// the same bytes on every machine.
const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];

/// An empty final deflate block (fixed Huffman codes, end of block).
const FINAL_BLOCK: [u8; 2] = [0x03, 0x00];

/// A writer that gzips what it is given, [`BLOCK`] by [`BLOCK`], on every
/// core. Call [`ParallelGzip::finish`] to write the end of the stream.
#[derive(Debug)]
pub struct ParallelGzip<W: Write> {
    out: W,
    level: Compression,
    /// Full blocks waiting for a batch.
    pending: Vec<Vec<u8>>,
    /// The block being filled.
    current: Vec<u8>,
    /// Blocks compressed together.
    batch: usize,
    crc: Crc,
    started: bool,
}

impl<W: Write> ParallelGzip<W> {
    /// A writer of gzip at `level` (0-9) into `out`.
    pub fn new(out: W, level: u32) -> ParallelGzip<W> {
        ParallelGzip {
            out,
            level: Compression::new(level.min(9)),
            pending: Vec::new(),
            current: Vec::with_capacity(BLOCK),
            batch: 2 * rayon::current_num_threads().max(1),
            crc: Crc::new(),
            started: false,
        }
    }

    /// Compresses what is left, writes the end of the stream and returns
    /// the writer written to.
    ///
    /// # Errors
    /// Errors of the writer; a deflate error (none is expected).
    pub fn finish(mut self) -> io::Result<W> {
        if !self.current.is_empty() {
            let block = std::mem::take(&mut self.current);
            self.pending.push(block);
        }
        self.flush_batch()?;
        if !self.started {
            self.out.write_all(&HEADER)?;
        }
        self.out.write_all(&FINAL_BLOCK)?;
        self.out.write_all(&self.crc.sum().to_le_bytes())?;
        self.out.write_all(&self.crc.amount().to_le_bytes())?;
        self.out.flush()?;
        Ok(self.out)
    }

    /// Compresses the pending blocks in parallel and writes them in order.
    fn flush_batch(&mut self) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        if !self.started {
            self.out.write_all(&HEADER)?;
            self.started = true;
        }
        let level = self.level;
        let blocks = std::mem::take(&mut self.pending);
        let done = by_size(&blocks, Workers::Cores, |_| 0, |b| deflate_block(b, level));
        for (block, deflated) in blocks.iter().zip(done) {
            let mut crc = Crc::new();
            crc.update(block);
            self.crc.combine(&crc);
            self.out.write_all(&deflated?)?;
        }
        Ok(())
    }
}

impl<W: Write> Write for ParallelGzip<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = buf.len().min(BLOCK - self.current.len());
        self.current.extend_from_slice(&buf[..n]);
        if self.current.len() == BLOCK {
            let full = std::mem::replace(&mut self.current, Vec::with_capacity(BLOCK));
            self.pending.push(full);
            if self.pending.len() >= self.batch {
                self.flush_batch()?;
            }
        }
        Ok(n)
    }

    /// Writes nothing early: the blocks are cut at fixed input offsets, so
    /// that the output depends on the input alone.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// `data` deflated as non-final blocks ending in a sync flush.
fn deflate_block(data: &[u8], level: Compression) -> io::Result<Vec<u8>> {
    let mut c = Compress::new(level, false);
    let mut out = Vec::with_capacity(data.len() + data.len() / 8 + 64);
    loop {
        let read = c.total_in() as usize;
        let status = c
            .compress_vec(&data[read..], &mut out, FlushCompress::Sync)
            .map_err(io::Error::other)?;
        // The flush is complete once all input is in and the output
        // buffer was not filled.
        if c.total_in() as usize == data.len() && out.len() < out.capacity() {
            return Ok(out);
        }
        if status == Status::StreamEnd {
            return Err(io::Error::other("deflate ended early"));
        }
        out.reserve(out.capacity());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn gunzip(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut d = flate2::read::GzDecoder::new(data);
        d.read_to_end(&mut out).unwrap();
        assert_eq!(d.into_inner().len(), 0, "one member, nothing after it");
        out
    }

    fn gzip(data: &[u8], chunk: usize) -> Vec<u8> {
        let mut gz = ParallelGzip::new(Vec::new(), 6);
        for piece in data.chunks(chunk.max(1)) {
            gz.write_all(piece).unwrap();
        }
        gz.finish().unwrap()
    }

    #[test]
    fn any_gzip_reader_gets_the_input_back() {
        let mut data = Vec::new();
        for i in 0..(3 * BLOCK + 12345) {
            data.push(((i * 7919) % 251) as u8 ^ (i >> 13) as u8);
        }
        for len in [0, 1, BLOCK - 1, BLOCK, BLOCK + 1, data.len()] {
            let out = gzip(&data[..len], 65536);
            assert_eq!(gunzip(&out), &data[..len], "{len} bytes");
        }
    }

    #[test]
    fn the_output_does_not_depend_on_how_the_input_was_written() {
        let data: Vec<u8> = (0..(2 * BLOCK + 99)).map(|i| (i % 97) as u8).collect();
        let whole = gzip(&data, data.len());
        assert_eq!(gzip(&data, 4096), whole);
        assert_eq!(gzip(&data, 1), gzip(&data[..], 1));
        assert!(whole.len() < data.len() / 10, "it compresses");
    }
}
