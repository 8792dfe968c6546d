//! cocoon's `snapshot export` tar stream in and out of the layout:
//! [`import_tar`] stores a stream as a snapshot artifact, [`export_tar`]
//! writes a stored snapshot as a stream `cocoon snapshot import` reads.
//!
//! # Import
//! The stream is read once, front to back, and never copied whole: each
//! member's body (its stored stream: the data segments back to back when
//! the file is sparse) is cut at the chunk size while it arrives, and each
//! chunk is hashed, compressed if asked, and written to its blob in the
//! same pass. Reading runs on the calling thread; hashing, compressing and
//! writing on a second thread, fed through a bounded queue of 1 MiB
//! buffers: about 10 MiB of buffers (plus the zstd encoder's own state)
//! whatever the file sizes. The artifact is exactly what
//! [`pack`](crate::formats::cocoon::snapshot::pack) makes of the same files
//! (titles, chunks, annotations, config), except for the creation time;
//! `snapshot.json` becomes the config, never a file.
//!
//! # Export
//! `snapshot.json` is written afresh from the config (as cocoon-common's
//! pull does), then each file in manifest order, with its mode and, when it
//! has holes, its sparse map as `COCOON.sparse.*` records. A file's body is
//! its chunks joined, zstd decoded. Every chunk is checked against its
//! digest: chunks of at most [`VERIFY_AHEAD`] bytes are read and verified
//! before any of their bytes is written; larger ones are checked as they
//! stream, and the last bytes of each are held back until the check has
//! passed. So a damaged large chunk can have had most of its bytes written
//! before the mismatch is found: the export then fails and the stream is
//! left incomplete: never with its end-of-archive marker, and never ending
//! on a member boundary (Go's `archive/tar`, which cocoon uses, takes a
//! stream that ends there as complete; a stray byte is added then), so
//! every importer (cocoon's, [`TarReader`]) refuses it. [`export_tar_file`]
//! never leaves a partial file behind.

use std::io::Read;
use std::sync::mpsc::{Receiver, Sender, SyncSender, channel, sync_channel};

use crate::chunks::write::cut;
use crate::error::{Error, IoContext, Result};
use crate::formats::cocoon::snapshot::{
    PackOptions, Packed, StoredFile, layer_media_type, write_snapshot_manifest,
};
use crate::formats::cocoon::tar::TarReader;
use crate::io::progress::Progress;
use crate::model::Descriptor;
use crate::store::writer::{Sink, Writer};

mod export;

pub use export::{export_tar, export_tar_as, export_tar_file};

pub use crate::chunks::read::VERIFY_AHEAD;

/// Bytes handed from the reading thread to the storing thread at a time.
const BUFFER: usize = 1 << 20;
/// Buffers queued between the two threads.
const QUEUE: usize = 6;

/// What the reading thread tells the storing thread.
enum Msg {
    /// A chunk of `len` bytes starts; compress it at `level` if given.
    Begin {
        media_type: String,
        len: u64,
        level: Option<i32>,
    },
    /// More of the chunk.
    Data(Vec<u8>),
    /// The chunk is complete: publish it.
    End,
}

/// Why reading stopped early.
enum Stop {
    /// The storing thread is gone; its own error says why.
    Storer,
    /// Reading failed.
    Failed(Error),
}

impl From<Error> for Stop {
    fn from(e: Error) -> Stop {
        Stop::Failed(e)
    }
}

/// What the reader learned of one member.
struct Member {
    name: String,
    mode: u32,
    map: crate::io::sparse::SparseMap,
    chunks: usize,
    compressed: bool,
}

/// Stores cocoon's snapshot tar stream (plain or gzip, as `cocoon snapshot
/// export` writes it) as a snapshot artifact and returns its manifest's
/// descriptor, ready for [`crate::Index::set_ref`], with a warning for each
/// member passed over (what is not a regular file, as cocoon's import). The envelope's config
/// becomes the snapshot config; each member is stored as `pack` stores
/// a file, cut and compressed per `options`. `progress` counts stored
/// bytes read (total unknown: 0). See the [module docs](self).
///
/// # Errors
/// Bad options; everything [`TarReader`] refuses (paths that are not
/// plain file names, bad sparse records, truncated or
/// malformed streams, envelopes other than version 1); I/O errors. Blobs
/// stored before an error are unreferenced: gc reclaims them.
pub fn import_tar<R: Read>(
    writer: &Writer<'_>,
    reader: R,
    options: &PackOptions,
    progress: &dyn Progress,
) -> Result<Packed> {
    options.check()?;
    let (mut tar, envelope) = TarReader::new(reader)?;
    let config = envelope.config.to_snapshot_config();
    progress.begin("importing", 0);
    let (read, stored) = std::thread::scope(|scope| {
        let (tx, rx) = sync_channel(QUEUE);
        let (back_tx, back_rx) = channel();
        let storer = scope.spawn(move || store_chunks(writer, rx, back_tx));
        let read = read_members(&mut tar, options, &tx, &back_rx, progress);
        drop(tx);
        let stored = storer
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (read, stored)
    });
    let (members, blobs) = match (read, stored) {
        (Ok(m), Ok(b)) => (m, b),
        (Err(Stop::Failed(e)), _) | (_, Err(e)) => return Err(e),
        (Err(Stop::Storer), Ok(_)) => unreachable!("the storer stops only on an error"),
    };
    progress.finish();
    let mut blobs = blobs.into_iter();
    let files: Vec<StoredFile> = members
        .into_iter()
        .map(|m| StoredFile {
            chunks: blobs.by_ref().take(m.chunks).collect(),
            name: m.name,
            mode: m.mode,
            map: m.map,
            compressed: m.compressed,
        })
        .collect();
    let manifest = write_snapshot_manifest(writer, options, config, &files)?;
    Ok(Packed {
        manifest,
        warnings: tar.skipped().to_vec(),
    })
}

/// Reads every member, cutting each body into chunks sent to the storer.
fn read_members<R: Read>(
    tar: &mut TarReader<R>,
    options: &PackOptions,
    tx: &SyncSender<Msg>,
    pool: &Receiver<Vec<u8>>,
    progress: &dyn Progress,
) -> std::result::Result<Vec<Member>, Stop> {
    let send = |m: Msg| tx.send(m).map_err(|_| Stop::Storer);
    let mut members = Vec::new();
    while let Some((header, mut body)) = tar.next_file()? {
        let len = header.stored_len;
        let level = options.level_for(len);
        let media_type = layer_media_type(&header.name, level.is_some());
        let ranges = match options.chunking() {
            Some(size) => cut(len, size),
            None => vec![(0, len)],
        };
        let what = format!("the body of member {:?}", header.name);
        for &(_, n) in &ranges {
            send(Msg::Begin {
                media_type: media_type.clone(),
                len: n,
                level,
            })?;
            let mut left = n;
            while left > 0 {
                let want = BUFFER.min(usize::try_from(left).unwrap_or(BUFFER));
                let mut buf = pool.try_recv().unwrap_or_default();
                buf.resize(want, 0);
                body.read_exact(&mut buf)
                    .map_err(|e| Error::stream("read", what.clone(), e))?;
                progress.advance(want as u64);
                send(Msg::Data(buf))?;
                left -= want as u64;
            }
            send(Msg::End)?;
        }
        members.push(Member {
            map: header
                .sparse
                .clone()
                .unwrap_or_else(|| crate::io::sparse::SparseMap::dense(len)),
            name: header.name,
            mode: header.mode,
            chunks: ranges.len(),
            compressed: level.is_some(),
        });
    }
    Ok(members)
}

/// The storing thread: hashes, compresses and publishes chunks in order,
/// handing buffers back for reuse. Stops at its first error.
fn store_chunks(
    writer: &Writer<'_>,
    rx: Receiver<Msg>,
    pool: Sender<Vec<u8>>,
) -> Result<Vec<Descriptor>> {
    let tmp = writer.layout().tmp_dir();
    let mut out = Vec::new();
    let mut current: Option<(Sink<'_, '_>, String)> = None;
    for msg in rx {
        match (msg, current.take()) {
            (
                Msg::Begin {
                    media_type,
                    len,
                    level,
                },
                None,
            ) => {
                let sink = Sink::new(writer.blob()?, level, len)
                    .ctx("start compressing a blob in", &tmp)?;
                current = Some((sink, media_type));
            }
            (Msg::Data(buf), Some((mut sink, media_type))) => {
                sink.write_all(&buf).ctx("write a blob in", &tmp)?;
                let _ = pool.send(buf); // the reader may be gone: nothing to reuse
                current = Some((sink, media_type));
            }
            (Msg::End, Some((sink, media_type))) => {
                let blob = sink.finish().ctx("write a blob in", &tmp)?;
                out.push(blob.commit(&media_type, None)?);
            }
            _ => unreachable!("chunks are begun, filled and ended in order"),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
