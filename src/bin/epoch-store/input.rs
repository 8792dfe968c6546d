//! Streams read by the import commands: a FILE or stdin, counted on the
//! progress bar.

use std::io::{self, IsTerminal, Read};
use std::path::Path;

use epoch_store::Progress;
use epoch_store::io::input::open_input;

/// An opened input: the reader, its size if known (0 for stdin), and a
/// name for messages.
pub struct Input {
    pub reader: Box<dyn Read>,
    pub total: u64,
    pub name: String,
}

/// Opens FILE (a regular file), or stdin for `-`. A terminal on stdin is
/// refused with `hint` (what to pipe in).
pub fn open(file: &Path, hint: &str) -> anyhow::Result<Input> {
    if file.as_os_str() == "-" {
        if io::stdin().is_terminal() {
            anyhow::bail!("stdin is a terminal, not {hint} or give a FILE");
        }
        return Ok(Input {
            reader: Box::new(io::stdin().lock()),
            total: 0,
            name: "stdin".into(),
        });
    }
    // A FIFO or device is refused at once, not waited on: a stream comes
    // in on stdin.
    let (f, md) = open_input(file).map_err(|e| match e {
        epoch_store::Error::NotRegularFile { .. } => anyhow::anyhow!(
            "{e}; to read a stream, give `-` and send it on stdin (`- < {}`)",
            file.display()
        ),
        e => e.into(),
    })?;
    Ok(Input {
        reader: Box::new(f),
        total: md.len(),
        name: file.display().to_string(),
    })
}

/// Counts the bytes read through it on the progress bar.
pub struct Counted<'p, R> {
    inner: R,
    progress: &'p dyn Progress,
    pub count: u64,
}

impl<'p, R> Counted<'p, R> {
    pub fn new(inner: R, progress: &'p dyn Progress) -> Self {
        Counted {
            inner,
            progress,
            count: 0,
        }
    }
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        self.progress.advance(n as u64);
        Ok(n)
    }
}
