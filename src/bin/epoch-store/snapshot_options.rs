//! How a snapshot is laid out: the options shared by `pack snapshot`,
//! `import-tar` and `import-legacy`, parsed into the library's
//! [`PackOptions`].

use epoch_store::formats::cocoon::snapshot::{Format, PackOptions};

/// How a snapshot is laid out: shared by `pack snapshot` and `import-tar`.
#[derive(clap::Args, Debug)]
pub(crate) struct SnapshotOptions {
    /// v1: one layer per file; v2: chunked.
    #[arg(long, value_enum, default_value_t = FormatArg::V2)]
    format: FormatArg,
    /// v2 chunk size (e.g. 64MiB, 512MiB; at most 4GiB).
    #[arg(long, value_name = "SIZE", default_value = "512MiB", value_parser = parse_size)]
    chunk_size: u64,
    /// Compress files of 1 MiB or more, chunk by chunk: zstd (level 3) or zstd:N (1-22). Needs v2.
    #[arg(long, value_name = "zstd[:N]", value_parser = parse_compress)]
    compress: Option<i32>,
    /// A description stored with the snapshot (for import-tar, it replaces the envelope's).
    #[arg(long, value_name = "TEXT")]
    description: Option<String>,
}

impl SnapshotOptions {
    /// The library's options.
    pub(crate) fn to_pack_options(&self) -> PackOptions {
        PackOptions::default()
            .format(match self.format {
                FormatArg::V1 => Format::V1,
                FormatArg::V2 => Format::V2,
            })
            .chunk_size(self.chunk_size)
            .description(self.description.clone())
            .zstd_level(self.compress)
    }
}

/// `--format`: the library's [`Format`], as clap parses it.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum FormatArg {
    V1,
    V2,
}

fn parse_compress(s: &str) -> Result<i32, String> {
    match s.split_once(':') {
        None if s == "zstd" => Ok(3),
        Some(("zstd", n)) => match n.parse::<i32>() {
            Ok(level @ 1..=22) => Ok(level),
            _ => Err(format!("zstd level {n:?} must be 1 to 22")),
        },
        _ => Err("expected zstd or zstd:LEVEL (e.g. zstd:3)".into()),
    }
}

pub(crate) fn parse_size(s: &str) -> Result<u64, String> {
    epoch_store::io::size::parse_size(s).map_err(|e| e.to_string())
}
