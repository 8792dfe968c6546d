//! `epoch-store import-tar`.

use std::fs::File;
use std::io::{self, IsTerminal, Read};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use epoch_store::{NoProgress, Progress, validate_ref};

use super::pack::SnapshotOptions;
use crate::output::{duration, rate, size};
use crate::{Ctx, EXIT_OK};

/// Store a `cocoon snapshot export` tar stream as a snapshot artifact.
///
/// Reads the tar (plain or gzip, detected by content) from FILE or stdin
/// once, front to back, without a temporary copy: each file's bytes are cut
/// into chunks, hashed, compressed if asked and written while they arrive.
/// The result is exactly what `pack snapshot` makes of the same files (only
/// the creation time differs): snapshot.json becomes the config, sparse
/// files keep their map. Links, devices, paths that are not plain file
/// names, bad sparse records and truncated streams are refused, and nothing
/// is tagged then.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:\n  \
    cocoon snapshot export sre-bot -o - | epoch-store import-tar - --ref sre-bot:v2\n  \
    epoch-store import-tar sre-bot.tar.gz --ref sre-bot:v2 --compress zstd\n  \
    epoch-store import-tar sre-bot.tar --ref sre-bot:v1 --format v1")]
pub struct Args {
    /// The tar stream, plain or gzip; `-` (the default) reads stdin.
    #[arg(value_name = "FILE|-", default_value = "-")]
    file: PathBuf,
    /// Tag it with this ref.
    #[arg(long = "ref", value_name = "REF")]
    ref_name: String,
    #[command(flatten)]
    options: SnapshotOptions,
}

/// Counts the bytes read through it on the progress bar.
struct Counted<'p, R> {
    inner: R,
    progress: &'p dyn Progress,
    count: u64,
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        self.progress.advance(n as u64);
        Ok(n)
    }
}

pub fn run(ctx: &Ctx, a: Args) -> anyhow::Result<u8> {
    validate_ref(&a.ref_name)?;
    let stdin = a.file.as_os_str() == "-";
    if stdin && io::stdin().is_terminal() {
        anyhow::bail!(
            "stdin is a terminal, not a tar stream; pipe one in \
             (cocoon snapshot export NAME -o - | epoch-store import-tar - --ref NAME:TAG) \
             or give a FILE"
        );
    }
    let layout = ctx.open()?;
    let options = a.options.to_pack_options();
    let (input, total): (Box<dyn Read>, u64) = if stdin {
        (Box::new(io::stdin().lock()), 0)
    } else {
        let f = File::open(&a.file).with_context(|| format!("open {}", a.file.display()))?;
        let md = f
            .metadata()
            .with_context(|| format!("stat {}", a.file.display()))?;
        let total = if md.is_file() { md.len() } else { 0 };
        (Box::new(f), total)
    };
    let started = Instant::now();
    let writer = layout.writer()?;
    let bar = crate::progress::Bar::new(ctx.quiet);
    bar.begin("importing", total);
    let mut counted = Counted {
        inner: input,
        progress: &bar,
        count: 0,
    };
    let manifest =
        epoch_store::snapshot_tar::import_tar(&writer, &mut counted, &options, &NoProgress)?;
    bar.finish();
    writer.update_index(|index| {
        index.set_ref(&a.ref_name, &manifest);
        Ok(())
    })?;
    let summary = layout.summarize(&manifest)?;
    let elapsed = started.elapsed();
    if ctx.json {
        crate::output::json(&serde_json::json!({
            "ref": a.ref_name,
            "digest": manifest.digest,
            "artifactType": manifest.artifact_type,
            "size": summary.size,
        }))?;
    }
    let from = if stdin {
        "stdin".to_string()
    } else {
        a.file.display().to_string()
    };
    ctx.say(format_args!(
        "Imported {from} as {} ({}): {} read, {} stored in {} ({})",
        a.ref_name,
        manifest.digest,
        size(counted.count),
        size(summary.size),
        duration(elapsed),
        rate(counted.count, elapsed)
    ))?;
    Ok(EXIT_OK)
}
