//! Packing files into an ECI, in the order and with the titles, media
//! types and annotations lf-edge's `Artifact.Manifest` gives them.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde_json::json;

use super::layer::{MAX_TIMESTAMP, put_tar_gzip};
use super::{CONFIG_TITLE, Format, INITRD_TITLE, KERNEL_TITLE, disk_title, root_title};
use crate::error::{Error, Result};
use crate::io::digest::Digest;
use crate::io::progress::Progress;
use crate::io::sparse::SparseMap;
use crate::model::eci::{self, DiskType, Role};
use crate::model::name::validate_file_name;
use crate::model::platform::PlatformSpec;
use crate::model::{Descriptor, annotation, media_type as mt};
use crate::store::writer::{StoredRange, Writer};

/// A disk file and its type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Disk {
    /// The file.
    pub path: PathBuf,
    /// Its type.
    pub disk_type: DiskType,
}

impl Disk {
    /// Parses `FILE[:TYPE]`. The text after the last `:` is a TYPE when it
    /// has no `/` and no `.`, and must then be one of the eight; otherwise
    /// the whole is the file, whose type comes from its extension (one of
    /// the eight names, `.img` for raw) or is raw.
    ///
    /// # Errors
    /// A TYPE that is not one of the eight, or an empty file name; the
    /// message names the file.
    pub fn parse(spec: &str) -> Result<Disk> {
        let (path, named) = match spec.rsplit_once(':') {
            Some((p, t)) if !t.contains('/') && !t.contains('.') => (p, Some(t)),
            _ => (spec, None),
        };
        if path.is_empty() {
            return Err(Error::InvalidArgument(format!(
                "{spec:?}: no file before the disk type"
            )));
        }
        let disk_type = match named {
            Some(t) => DiskType::from_name(t).ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "{path}: unknown disk type {t:?} (one of {})",
                    DiskType::names()
                ))
            })?,
            None => Path::new(path)
                .extension()
                .and_then(|e| e.to_str())
                .map(str::to_ascii_lowercase)
                .and_then(|e| DiskType::from_name(&e))
                .unwrap_or(DiskType::Raw),
        };
        Ok(Disk {
            path: PathBuf::from(path),
            disk_type,
        })
    }
}

/// The files of an ECI; every one is optional, but there must be one.
#[derive(Clone, Debug, Default)]
pub struct EciFiles {
    /// The kernel.
    pub kernel: Option<PathBuf>,
    /// The initrd.
    pub initrd: Option<PathBuf>,
    /// The root disk.
    pub root: Option<Disk>,
    /// Additional disks, `disk-0`, `disk-1`, ... in this order.
    pub disks: Vec<Disk>,
    /// The ECI config file (stored as `config.json`).
    pub config: Option<PathBuf>,
    /// Other files, titled with their names.
    pub others: Vec<PathBuf>,
}

/// How to pack.
#[derive(Clone, Debug)]
pub struct PackOptions {
    /// Artifacts or legacy.
    pub format: Format,
    /// The mtime of every legacy tar header and the generated config's
    /// `created`, in seconds since 1970 (default 0).
    pub timestamp: u64,
    /// The generated config's os and architecture (default linux on this
    /// machine's architecture).
    pub platform: PlatformSpec,
    /// The generated config's author (default lf-edge's).
    pub author: String,
}

impl Default for PackOptions {
    fn default() -> PackOptions {
        PackOptions {
            format: Format::Artifacts,
            timestamp: 0,
            platform: "linux"
                .parse()
                .unwrap_or_else(|_| PlatformSpec::linux_amd64()),
            author: eci::DEFAULT_AUTHOR.to_string(),
        }
    }
}

/// One file to store, opened and titled.
struct Planned {
    role: Role,
    title: String,
    media_type: &'static str,
    path: PathBuf,
    file: File,
    size: u64,
    mode: u32,
    /// The config label naming its path, if it has one.
    label: Option<String>,
}

/// Packs `files` as an ECI in `options.format` and returns the manifest's
/// descriptor, ready to be tagged. Every file is opened (and its name
/// checked) before anything is written; then each is stored as its layer,
/// the largest first on all cores: as it is (artifacts) or alone in a gzip
/// tar (legacy). Without a config file the config is an OCI image config
/// naming each file's path in its labels, as lf-edge writes it.
///
/// # Errors
/// No files; a file that cannot be opened or is not a regular file (the
/// error names it); a file name that is not a plain UTF-8 file name; two
/// files with one title; a timestamp past 11 octal digits; I/O errors.
/// Nothing references the blobs written before an error; gc reclaims them.
pub fn pack(
    writer: &Writer<'_>,
    files: &EciFiles,
    options: &PackOptions,
    progress: &dyn Progress,
) -> Result<Descriptor> {
    if options.timestamp > MAX_TIMESTAMP {
        return Err(Error::InvalidArgument(format!(
            "timestamp {} is past the largest a tar header holds ({MAX_TIMESTAMP})",
            options.timestamp
        )));
    }
    let planned = plan(files)?;
    let (layers, config_part): (Vec<&Planned>, Vec<&Planned>) =
        planned.iter().partition(|p| p.role != Role::Config);
    let total: u64 = planned.iter().map(|p| p.size).sum();
    progress.begin("packing", total);
    let stored = crate::io::schedule::by_size(
        &planned,
        crate::io::schedule::Workers::Cores,
        |p| p.size,
        |p| store(writer, p, options, progress),
    );
    progress.finish();
    let mut by_title = BTreeMap::new();
    for (p, r) in planned.iter().zip(stored) {
        by_title.insert(p.title.as_str(), r?);
    }
    let layer_descs: Vec<Descriptor> = layers
        .iter()
        .map(|p| by_title[p.title.as_str()].0.clone())
        .collect();
    let config = match config_part.first() {
        Some(c) => by_title[c.title.as_str()].0.clone(),
        None => {
            let diff_ids: Vec<&Digest> = layers
                .iter()
                .map(|p| &by_title[p.title.as_str()].1)
                .collect();
            generated_config(writer, &layers, &diff_ids, options)?
        }
    };
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": mt::OCI_MANIFEST,
        "config": config,
        "layers": layer_descs,
    });
    let bytes = serde_json::to_vec(&manifest)
        .map_err(|e| Error::InvalidArgument(format!("cannot serialize the manifest: {e}")))?;
    writer.put_bytes(mt::OCI_MANIFEST, &bytes)
}

/// Stores one file as its layer and annotates it; returns the descriptor
/// and the layer's diffID.
fn store(
    writer: &Writer<'_>,
    p: &Planned,
    options: &PackOptions,
    progress: &dyn Progress,
) -> Result<(Descriptor, Digest)> {
    let (desc, diff) = match options.format {
        Format::Artifacts => {
            let map = SparseMap::dense(p.size);
            let range = StoredRange {
                file: &p.file,
                path: &p.path,
                map: &map,
                offset: 0,
                len: p.size,
            };
            let desc = writer.put_stored(p.media_type, range, None, progress)?;
            let diff = desc.digest.clone();
            (desc, diff)
        }
        Format::Legacy => put_tar_gzip(
            writer,
            &p.file,
            &p.path,
            &p.title,
            p.mode,
            options.timestamp,
            p.size,
            progress,
        )?,
    };
    Ok((annotate(desc, p), diff))
}

/// Adds the lfedge media type, role and title annotations.
fn annotate(mut desc: Descriptor, p: &Planned) -> Descriptor {
    let a = &mut desc.annotations;
    a.insert(eci::ANNOTATION_MEDIA_TYPE.into(), p.media_type.into());
    a.insert(eci::ANNOTATION_ROLE.into(), p.role.annotation().into());
    a.insert(annotation::TITLE.into(), p.title.clone());
    desc
}

/// The OCI image config lf-edge writes when there is no config file: its
/// fields in Go's order, the labels naming each file's path.
fn generated_config(
    writer: &Writer<'_>,
    layers: &[&Planned],
    diff_ids: &[&Digest],
    options: &PackOptions,
) -> Result<Descriptor> {
    let labels: BTreeMap<&str, String> = layers
        .iter()
        .filter_map(|p| Some((p.label.as_deref()?, format!("/{}", p.title))))
        .collect();
    let created = crate::io::timestamp::rfc3339(
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(options.timestamp),
    );
    let config = json!({
        "created": created,
        "author": options.author,
        "architecture": options.platform.architecture,
        "os": options.platform.os,
        "config": { "Labels": labels },
        "rootfs": { "type": "layers", "diff_ids": diff_ids },
    });
    let bytes = serde_json::to_vec(&config)
        .map_err(|e| Error::InvalidArgument(format!("cannot serialize the config: {e}")))?;
    let mut desc = writer.put_bytes(mt::OCI_IMAGE_CONFIG, &bytes)?;
    desc.annotations
        .insert(annotation::TITLE.into(), CONFIG_TITLE.into());
    Ok(desc)
}

/// Opens every file and gives it its role, title, media type and label, in
/// lf-edge's order: kernel, initrd, root, disks, others, then the config.
fn plan(files: &EciFiles) -> Result<Vec<Planned>> {
    let mut out = Vec::new();
    if let Some(k) = &files.kernel {
        out.push(open(
            Role::Kernel,
            k,
            KERNEL_TITLE.into(),
            eci::KERNEL,
            Some(eci::LABEL_KERNEL.into()),
        )?);
    }
    if let Some(i) = &files.initrd {
        out.push(open(
            Role::Initrd,
            i,
            INITRD_TITLE.into(),
            eci::INITRD,
            Some(eci::LABEL_INITRD.into()),
        )?);
    }
    if let Some(d) = &files.root {
        let title = root_title(&file_name(&d.path)?);
        let label = Some(eci::LABEL_ROOT.into());
        out.push(open(
            Role::RootDisk,
            &d.path,
            title,
            d.disk_type.media_type(),
            label,
        )?);
    }
    for (i, d) in files.disks.iter().enumerate() {
        let title = disk_title(i, &file_name(&d.path)?);
        let label = Some(format!("{}{i}", eci::LABEL_DISK_PREFIX));
        out.push(open(
            Role::AdditionalDisk,
            &d.path,
            title,
            d.disk_type.media_type(),
            label,
        )?);
    }
    for o in &files.others {
        let label = Some(eci::LABEL_OTHER.into());
        out.push(open(Role::Other, o, file_name(o)?, eci::OTHER, label)?);
    }
    if let Some(c) = &files.config {
        out.push(open(
            Role::Config,
            c,
            CONFIG_TITLE.into(),
            eci::CONFIG,
            None,
        )?);
    }
    if out.is_empty() {
        return Err(Error::InvalidArgument(
            "an ECI needs at least one file (--kernel, --initrd, --root, --disk, --config or --other)"
                .into(),
        ));
    }
    let mut seen = BTreeSet::new();
    for p in &out {
        if !seen.insert(p.title.as_str()) {
            return Err(Error::InvalidArgument(format!(
                "{}: two files would both be titled {:?} (and unpack to one name); rename one",
                p.path.display(),
                p.title
            )));
        }
    }
    Ok(out)
}

/// Opens one file (symlinks followed, FIFOs never waited on).
fn open(
    role: Role,
    path: &Path,
    title: String,
    media_type: &'static str,
    label: Option<String>,
) -> Result<Planned> {
    validate_file_name(&title)
        .map_err(|e| Error::InvalidArgument(format!("{}: {e}", path.display())))?;
    let (file, md) = crate::io::input::open_input(path)?;
    Ok(Planned {
        role,
        title,
        media_type,
        path: path.to_path_buf(),
        size: md.len(),
        mode: md.permissions().mode() & 0o777,
        file,
        label,
    })
}

/// A file's own name, which titles it (lf-edge's `path.Base`).
fn file_name(path: &Path) -> Result<String> {
    let name = path.file_name().and_then(|n| n.to_str()).ok_or_else(|| {
        Error::InvalidArgument(format!(
            "{}: no UTF-8 file name to title it with",
            path.display()
        ))
    })?;
    Ok(name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disks_parse_with_or_without_a_type() {
        let d = |s: &str| Disk::parse(s).map(|d| (d.path, d.disk_type));
        assert_eq!(d("a.img").unwrap(), ("a.img".into(), DiskType::Raw));
        assert_eq!(d("a.QCOW2").unwrap(), ("a.QCOW2".into(), DiskType::Qcow2));
        assert_eq!(
            d("dir/a.vmdk:iso").unwrap(),
            ("dir/a.vmdk".into(), DiskType::Iso)
        );
        assert_eq!(
            d("x:y/a.vhdx").unwrap(),
            ("x:y/a.vhdx".into(), DiskType::Vhdx)
        );
        let e = d("disk.img:vdi").unwrap_err().to_string();
        assert!(
            e.contains("disk.img") && e.contains("\"vdi\"") && e.contains("qcow2"),
            "{e}"
        );
        assert!(d(":raw").is_err());
    }
}
