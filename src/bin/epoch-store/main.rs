//! The `epoch-store` command: parses arguments, calls the library, prints.

mod commands;
mod duration;
mod input;
mod output;
mod progress;
mod remote;
mod report;
mod snapshot_options;
mod target;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit status: everything fine.
const EXIT_OK: u8 = 0;
/// Exit status: verify found problems.
const EXIT_PROBLEMS: u8 = 1;
/// Exit status: an error (bad input, missing ref, I/O).
const EXIT_ERROR: u8 = 2;

const EXAMPLES: &str = "\
Examples:
  epoch-store --layout /media/usb/store init
  epoch-store --layout /media/usb/store add --ref vm:v1 disk.qcow2 memory-ranges
  epoch-store --layout /media/usb/store ls
  epoch-store --layout /media/usb/store verify
  epoch-store --layout /media/usb/store gc --dry-run

Exit codes: 0 ok, 1 verify found problems, 2 error (bad input, missing ref, I/O).
The layout directory can also be set with EPOCH_STORE_LAYOUT.";

/// Keep VM snapshots, OS disk images and container images in an OCI image
/// layout, carry them across an air gap, verify them on the other side.
#[derive(Parser, Debug)]
#[command(name = "epoch-store", version, after_help = EXAMPLES, max_term_width = 100)]
struct Cli {
    /// The OCI image layout directory.
    #[arg(
        long,
        global = true,
        env = "EPOCH_STORE_LAYOUT",
        default_value = ".",
        value_name = "DIR"
    )]
    layout: PathBuf,
    /// Print machine-readable JSON on stdout.
    #[arg(long, global = true)]
    json: bool,
    /// Print nothing but errors (and what was asked for, like `cat`).
    #[arg(short, long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    Init(commands::init::Args),
    Add(commands::add::Args),
    Ls(commands::ls::Args),
    Inspect(commands::inspect::Args),
    Cat(commands::cat::Args),
    Tag(commands::tag::Args),
    Untag(commands::untag::Args),
    Gc(commands::gc::Args),
    Verify(commands::verify::Args),
    Pack(commands::pack::Args),
    Unpack(commands::unpack::Args),
    ImportTar(commands::import_tar::Args),
    ExportTar(commands::export_tar::Args),
    ExportArchive(commands::export_archive::Args),
    ImportArchive(commands::import_archive::Args),
    Copy(commands::copy::Args),
    Build(commands::build::Args),
    Push(commands::push::Args),
    Pull(commands::pull::Args),
    Login(commands::login::LoginArgs),
    Logout(commands::login::LogoutArgs),
    Du(commands::du::Args),
    ImportLegacy(commands::import_legacy::Args),
}

/// What every command gets besides its own arguments.
pub(crate) struct Ctx {
    pub layout_dir: PathBuf,
    pub json: bool,
    pub quiet: bool,
}

impl Ctx {
    /// The layout `--layout` names; an error that refuses the directory
    /// says what to do next.
    pub fn open(&self) -> anyhow::Result<epoch_store::Layout> {
        epoch_store::Layout::open(&self.layout_dir)
            .map(|l| l.with_copy_mode(copy_mode()))
            .map_err(|e| self.layout_hint(e))
    }

    /// For the commands that bring data in (`import-archive`, `import-tar`,
    /// `import-legacy`): the layout, created first if the directory does not
    /// exist or is empty, as `copy --to` does. Anything else is opened as a
    /// layout, so a directory of other files is refused and left alone.
    pub fn open_or_create(&self, command: &str) -> anyhow::Result<epoch_store::Layout> {
        let dir = &self.layout_dir;
        let absent_or_empty = match std::fs::read_dir(dir) {
            Ok(mut entries) => entries.next().is_none(),
            Err(e) => e.kind() == std::io::ErrorKind::NotFound,
        };
        if absent_or_empty || interrupted_init(dir) {
            return Ok(epoch_store::Layout::init(dir)?.with_copy_mode(copy_mode()));
        }
        epoch_store::Layout::open(dir)
            .map(|l| l.with_copy_mode(copy_mode()))
            .map_err(|e| match e {
                epoch_store::Error::NotALayout { .. } if dir.is_dir() => anyhow::anyhow!(
                    "{e}; {command} creates a layout only in a new or empty directory and \
                 writes nothing here: pass --layout with a layout or a new directory, or \
                 make this one a layout with `epoch-store --layout {} init --force`",
                    dir.display()
                ),
                e => self.layout_hint(e),
            })
    }

    /// `e`, with what to do next when it refuses the layout directory.
    fn layout_hint(&self, e: epoch_store::Error) -> anyhow::Error {
        let dir = &self.layout_dir;
        match e {
            epoch_store::Error::NotALayout { .. } if !dir.exists() => anyhow::anyhow!(
                "{} is not an OCI image layout: it does not exist; pass --layout with the \
                 layout's directory (or set EPOCH_STORE_LAYOUT), or create one there with \
                 `epoch-store --layout {} init`",
                dir.display(),
                dir.display()
            ),
            epoch_store::Error::NotALayout { .. } => anyhow::anyhow!(
                "{e}; pass --layout with the layout's directory (or set EPOCH_STORE_LAYOUT)"
            ),
            e => e.into(),
        }
    }

    /// A write session on `layout` that says on a terminal (not with `-q`)
    /// when it has to wait for a running gc.
    pub fn writer<'l>(
        &self,
        layout: &'l epoch_store::Layout,
    ) -> anyhow::Result<epoch_store::Writer<'l>> {
        Ok(layout.writer_with(&progress::Bar::new(self.quiet))?)
    }

    /// Chatter: a confirmation or note on stdout, unless `--quiet` or
    /// `--json`.
    pub fn say(&self, line: impl std::fmt::Display) -> std::io::Result<()> {
        if self.quiet || self.json {
            return Ok(());
        }
        output::line(line)
    }

    /// The answer to what was asked (the rows of `ls`, what a dry run
    /// would do, ...) on stdout: `-q` silences chatter, never the answer;
    /// with `--json` the command prints JSON instead.
    pub fn answer(&self, line: impl std::fmt::Display) -> std::io::Result<()> {
        if self.json {
            return Ok(());
        }
        output::line(line)
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let ctx = Ctx {
        layout_dir: cli.layout,
        json: cli.json,
        quiet: cli.quiet,
    };
    let result = match cli.command {
        Command::Init(a) => commands::init::run(&ctx, a),
        Command::Add(a) => commands::add::run(&ctx, a),
        Command::Ls(a) => commands::ls::run(&ctx, a),
        Command::Inspect(a) => commands::inspect::run(&ctx, a),
        Command::Cat(a) => commands::cat::run(&ctx, a),
        Command::Tag(a) => commands::tag::run(&ctx, a),
        Command::Untag(a) => commands::untag::run(&ctx, a),
        Command::Gc(a) => commands::gc::run(&ctx, a),
        Command::Verify(a) => commands::verify::run(&ctx, a),
        Command::Pack(a) => commands::pack::run(&ctx, a),
        Command::Unpack(a) => commands::unpack::run(&ctx, a),
        Command::ImportTar(a) => commands::import_tar::run(&ctx, a),
        Command::ExportTar(a) => commands::export_tar::run(&ctx, a),
        Command::ExportArchive(a) => commands::export_archive::run(&ctx, a),
        Command::ImportArchive(a) => commands::import_archive::run(&ctx, a),
        Command::Copy(a) => commands::copy::run(&ctx, a),
        Command::Build(a) => commands::build::run(&ctx, a),
        Command::Push(a) => commands::push::run(&ctx, a),
        Command::Pull(a) => commands::pull::run(&ctx, a),
        Command::Login(a) => commands::login::login(&ctx, a),
        Command::Logout(a) => commands::login::logout(&ctx, a),
        Command::Du(a) => commands::du::run(&ctx, a),
        Command::ImportLegacy(a) => commands::import_legacy::run(&ctx, a),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) if is_broken_pipe(&e) => ExitCode::from(EXIT_OK),
        Err(e) => {
            // A bare I/O error here comes from writing our own output.
            let what = if e.downcast_ref::<std::io::Error>().is_some() {
                "cannot write output: "
            } else {
                ""
            };
            let mut said = format!("{what}{e}");
            output::warn(format_args!("epoch-store: error: {said}"));
            // Messages often include their cause already (an I/O error's
            // text ends with the OS error): print only what is new.
            for cause in e.chain().skip(1) {
                let cause = cause.to_string();
                if !said.contains(&cause) {
                    output::warn(format_args!("  caused by: {cause}"));
                    said.push_str(&cause);
                }
            }
            ExitCode::from(EXIT_ERROR)
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            || matches!(c.downcast_ref::<epoch_store::Error>(),
                Some(epoch_store::Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// How file data is moved, from `EPOCH_STORE_COPY` (`copy`, `write`;
/// `auto` when unset): for benchmarks and filesystems that misbehave.
pub(crate) fn copy_mode() -> epoch_store::io::copy_range::CopyMode {
    let word = std::env::var("EPOCH_STORE_COPY").unwrap_or_default();
    epoch_store::io::copy_range::CopyMode::named(&word)
}

/// Whether `dir` holds only what an `init` cut short leaves (a full disk
/// before `index.json`): `oci-layout`, the private directory and a `blobs/`
/// without a blob. Finishing the init there loses nothing; a `blobs/` with
/// blobs in it may be a layout whose index was lost, and is left alone.
fn interrupted_init(dir: &std::path::Path) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    let init_only = entries.filter_map(Result::ok).all(|e| {
        matches!(
            e.file_name().to_str(),
            Some("oci-layout" | "blobs" | ".epoch-store")
        )
    });
    let no_blob =
        std::fs::read_dir(dir.join("blobs/sha256")).map_or(true, |mut d| d.next().is_none());
    init_only && no_blob && !dir.join("index.json").exists()
}
