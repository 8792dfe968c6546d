//! Reading a snapshot directory to pack: its regular files, each opened
//! once, the `snapshot.json` envelope, and CPU, memory and NICs from Cloud
//! Hypervisor's `config.json`.

use std::fs::{self, File};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, IoContext, Result};
use crate::formats::cocoon::config::SnapshotConfig;
use crate::formats::cocoon::tar::{Envelope, SNAPSHOT_JSON};
use crate::io::sparse::SparseMap;
use crate::model::name::validate_file_name;

/// One file of a snapshot directory, ready to pack.
pub(super) struct DirFile {
    pub(super) name: String,
    pub(super) path: PathBuf,
    pub(super) file: File,
    pub(super) map: SparseMap,
    pub(super) mode: u32,
}

/// A snapshot directory read: its regular files, the config its
/// `snapshot.json` (or Cloud Hypervisor's `config.json`) gives, and what
/// the user should be told.
pub(super) struct Scanned {
    pub(super) files: Vec<DirFile>,
    pub(super) config: SnapshotConfig,
    pub(super) warnings: Vec<String>,
}

/// Reads `dir` as cocoon's export does (`utils/tar.go:TarDir`): its regular
/// files in name order; every other entry (symlink, directory, FIFO,
/// socket, device) is skipped, with a warning, and never followed.
pub(super) fn read_dir(dir: &Path, ch_config: bool) -> Result<Scanned> {
    let (names, mut warnings) = list_regular(dir)?;
    let mut envelope = None;
    let mut files = Vec::new();
    for name in names {
        validate_file_name(&name)?;
        let path = dir.join(&name);
        let (file, md) = crate::io::input::open_regular(&path)?;
        if name == SNAPSHOT_JSON {
            let raw = read_whole(
                &file,
                &path,
                crate::formats::cocoon::tar::ENVELOPE_LIMIT,
                SNAPSHOT_JSON,
            )?;
            let env: Envelope =
                serde_json::from_slice(&raw).map_err(|e| Error::InvalidDocument {
                    what: path.display().to_string(),
                    reason: e.to_string(),
                })?;
            envelope = Some(env.config.to_snapshot_config());
            continue;
        }
        let map = SparseMap::of_file(&file).ctx("find data extents of", &path)?;
        files.push(DirFile {
            name,
            path,
            file,
            map,
            mode: md.permissions().mode() & 0o7777,
        });
    }
    if files.is_empty() {
        let why = if warnings.is_empty() {
            String::new()
        } else {
            format!(" ({})", warnings.join("; "))
        };
        return Err(Error::InvalidArgument(format!(
            "{} has no regular files to pack{why}",
            dir.display()
        )));
    }
    let config = match envelope {
        Some(config) => config,
        None => {
            let (config, unknown) = config_without_envelope(dir, &files, ch_config)?;
            warnings.push(unknown);
            config
        }
    };
    Ok(Scanned {
        files,
        config,
        warnings,
    })
}

/// The names of `dir`'s regular files, sorted, and a warning for each
/// other entry, passed over without following it.
fn list_regular(dir: &Path) -> Result<(Vec<String>, Vec<String>)> {
    let mut names = Vec::new();
    let mut warnings = Vec::new();
    for e in fs::read_dir(dir).ctx("list directory", dir)? {
        let e = e.ctx("list directory", dir)?;
        let t = e.file_type().ctx("list directory", dir)?;
        if !t.is_file() {
            warnings.push(format!(
                "skipped {:?}: a {}, not a regular file (cocoon's export skips it too)",
                e.file_name(),
                crate::io::input::type_name(t)
            ));
            continue;
        }
        let name = e.file_name().into_string().map_err(|n| {
            Error::InvalidArgument(format!("{}: file name {n:?} is not UTF-8", dir.display()))
        })?;
        names.push(name);
    }
    names.sort();
    warnings.sort();
    Ok((names, warnings))
}

/// The config of a directory without `snapshot.json`: what Cloud
/// Hypervisor's `config.json` states, and a warning saying what is unknown.
fn config_without_envelope(
    dir: &Path,
    files: &[DirFile],
    ch_config: bool,
) -> Result<(SnapshotConfig, String)> {
    let mut config = SnapshotConfig::default();
    let ch = files.iter().find(|f| f.name == CH_CONFIG);
    if let (true, Some(f)) = (ch_config, ch) {
        vm_fields_from_ch_config(f, &mut config)?;
    }
    let from_ch = if config.nics > 0 {
        format!(
            " ({} NICs, CPU and memory come from {CH_CONFIG})",
            config.nics
        )
    } else {
        String::new()
    };
    let unknown = format!(
        "{} has no {SNAPSHOT_JSON} (the envelope `cocoon snapshot export` writes): the \
         snapshot id, base image and network name are not recorded{from_ch}; cocoon's import \
         gives it a new id, and a clone of it has no base image to pull",
        dir.display()
    );
    Ok((config, unknown))
}

/// Cloud Hypervisor's VM config in a snapshot directory.
const CH_CONFIG: &str = "config.json";

/// Largest `config.json` read as Cloud Hypervisor's (theirs are a few KiB).
const CH_CONFIG_LIMIT: u64 = 16 << 20;

/// Reads a whole (small) file from an open descriptor, refusing one over `limit`.
fn read_whole(file: &File, path: &Path, limit: u64, what: &str) -> Result<Vec<u8>> {
    use std::io::Read;
    let mut buf = Vec::new();
    file.take(limit.saturating_add(1))
        .read_to_end(&mut buf)
        .ctx("read", path)?;
    if buf.len() as u64 > limit {
        return Err(Error::TooLarge {
            what: format!("{what} ({})", path.display()),
            size: buf.len() as u64,
            limit,
        });
    }
    Ok(buf)
}

/// CPU, memory and NICs from Cloud Hypervisor's `config.json`
/// (`cpus.boot_vcpus`, `memory.size` and `zones`, the `net` devices), read from the descriptor the file is stored from. A file
/// that cannot be read or is not such a config is an error that says what
/// is wrong: a snapshot must not be published with 0 vCPUs and 0 B memory
/// because its config went unread.
fn vm_fields_from_ch_config(f: &DirFile, config: &mut SnapshotConfig) -> Result<()> {
    let not_ch = |reason: String| Error::InvalidDocument {
        what: f.path.display().to_string(),
        reason: format!(
            "{reason}; it is not a Cloud Hypervisor config, so the snapshot's CPU and memory \
             are unknown. If this config.json is not Cloud Hypervisor's, pack with \
             --no-ch-config (it is then stored as a plain file), or add a snapshot.json"
        ),
    };
    // The stored bytes are read through the same descriptor later; read
    // from offset 0 without moving it.
    let mut raw = vec![0u8; f.map.logical_size().min(CH_CONFIG_LIMIT + 1) as usize];
    let n = read_at_full(&f.file, &mut raw).ctx("read", &f.path)?;
    raw.truncate(n);
    if raw.len() as u64 > CH_CONFIG_LIMIT {
        return Err(not_ch(format!("it is over {} MiB", CH_CONFIG_LIMIT >> 20)));
    }
    let v: serde_json::Value =
        serde_json::from_slice(&raw).map_err(|e| not_ch(format!("it is not JSON ({e})")))?;
    let field = |pointer: &str, min: i64| -> Result<i64> {
        match v.pointer(pointer) {
            Some(x) => x.as_i64().filter(|&n| n >= min).ok_or_else(|| {
                not_ch(format!(
                    "{pointer} is {x}, not an integer of at least {min}"
                ))
            }),
            None => Err(not_ch(format!("it has no {pointer}"))),
        }
    };
    config.cpu = field("/cpus/boot_vcpus", 1)?;
    // Guest memory is `memory.size` plus any `memory.zones[].size`.
    let mut memory = field("/memory/size", 0)?;
    if let Some(zones) = v.pointer("/memory/zones").and_then(|z| z.as_array()) {
        for i in 0..zones.len() {
            memory = memory
                .checked_add(field(&format!("/memory/zones/{i}/size"), 1)?)
                .ok_or_else(|| not_ch("its memory sizes overflow".into()))?;
        }
    }
    if memory == 0 {
        return Err(not_ch(
            "its memory.size is 0 and it has no memory.zones".into(),
        ));
    }
    config.memory = memory;
    // cocoon's clone gives the VM as many NICs as the snapshot had
    // (`cmd/vm/run.go`: nics = cfg.NICs): one per `net` device.
    config.nics = match v.get("net") {
        None | Some(serde_json::Value::Null) => 0,
        Some(serde_json::Value::Array(net)) => net.len() as i64,
        Some(other) => return Err(not_ch(format!("its net is {other}, not a list of devices"))),
    };
    if config.hypervisor.is_empty() {
        config.hypervisor = "cloud-hypervisor".into();
    }
    Ok(())
}

/// Fills `buf` from offset 0 of `file` (less at end of file); returns the
/// bytes read.
fn read_at_full(file: &File, buf: &mut [u8]) -> std::io::Result<usize> {
    use std::os::unix::fs::FileExt;
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}
