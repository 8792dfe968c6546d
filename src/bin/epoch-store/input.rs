//! Streams read by the import commands: a FILE or stdin, counted on the
//! progress bar.

use std::fs::File;
use std::io::{self, IsTerminal, Read};
use std::path::Path;

use anyhow::Context;
use epoch_store::Progress;

/// An opened input: the reader, its size if known (0 for stdin and other
/// non-files), and a name for messages.
pub struct Input {
    pub reader: Box<dyn Read>,
    pub total: u64,
    pub name: String,
}

/// Opens FILE, or stdin for `-`. A terminal on stdin is refused with
/// `hint` (what to pipe in).
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
    let f = File::open(file).with_context(|| format!("open {}", file.display()))?;
    let md = f
        .metadata()
        .with_context(|| format!("stat {}", file.display()))?;
    Ok(Input {
        reader: Box::new(f),
        total: if md.is_file() { md.len() } else { 0 },
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
