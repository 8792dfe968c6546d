//! `epoch-store inspect`.

use epoch_store::formats::cocoon::config::SnapshotConfig;
use epoch_store::model::{Descriptor, Document, media_type};
use epoch_store::{DOCUMENT_LIMIT, Summary};

use crate::output::size;
use crate::{Ctx, EXIT_OK};

/// Show a manifest or index: kind, annotations, config, layers and sizes.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Examples:\n  epoch-store inspect vm:v1\n  epoch-store --json inspect sha256:4413...\n  \
    epoch-store inspect vm:multi --platform linux/arm64\n  \
    epoch-store inspect docker://registry.internal:5000/library/debian:12 --platform linux/arm64"
)]
pub struct Args {
    /// A ref name or a digest; or `docker://HOST[:PORT]/REPO[:TAG|@DIGEST]`
    /// to read a registry's image or index without pulling it.
    #[arg(value_name = "REF|DIGEST")]
    target: String,
    /// Where REF is an index, show its entry for this platform instead of
    /// the index (the entry `unpack` and `export-tar` would take).
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    platform: Option<epoch_store::model::platform::PlatformSpec>,
    #[command(flatten)]
    connect: crate::remote::ConnectArgs,
}

pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<u8> {
    if args.target.starts_with("docker://") {
        let reference: epoch_store::transport::registry::Reference = args
            .target
            .parse()
            .map_err(|e: String| anyhow::anyhow!(e))?;
        return super::inspect_remote::run(ctx, &reference, args.platform.as_ref(), &args.connect);
    }
    let layout = ctx.open()?;
    let desc = match args.platform {
        Some(p) => {
            let arg = crate::target::PlatformArg { platform: Some(p) };
            crate::target::resolve_following(&layout, &args.target, &arg)?
        }
        None => layout.resolve(&args.target)?,
    };
    if !media_type::is_document(&desc.media_type) {
        anyhow::bail!(
            "{} is a {} blob of {}, not a manifest or index; use `epoch-store cat {}` to read it",
            desc.digest,
            desc.media_type,
            size(desc.size),
            desc.digest
        );
    }
    let summary = layout.summarize(&desc)?;
    let (files, snapshot_config) = match files_of(&layout, &desc, &summary) {
        Ok(shown) => shown,
        // A manifest that does not follow its format is still shown (it
        // is what the user needs to see), without the files it would make.
        Err(e)
            if e.downcast_ref::<epoch_store::Error>()
                .is_some_and(|e| e.kind() == epoch_store::ErrorKind::Malformed) =>
        {
            crate::output::warn(format_args!(
                "epoch-store: warning: {e:#}; its files cannot be listed, and unpack and \
                 export-tar refuse it"
            ));
            (vec![], None)
        }
        Err(e) => return Err(e),
    };
    let eci = match summary.kind {
        epoch_store::model::Kind::Eci => Some(epoch_store::formats::eci::read(&layout, &desc)?),
        _ => None,
    };
    let raw = layout.read_blob(&desc, DOCUMENT_LIMIT)?;
    let shown = Shown {
        desc: &desc,
        summary: &summary,
        doc: summary.document.as_ref().expect("a document was read"),
        files: &files,
        snapshot_config: snapshot_config.as_ref(),
        eci: eci.as_ref(),
    };
    if ctx.json {
        print_json(&shown, &raw)?;
    } else {
        print_human(ctx, &shown)?;
    }
    Ok(EXIT_OK)
}

/// What `inspect` shows of one manifest or index.
struct Shown<'a> {
    desc: &'a Descriptor,
    summary: &'a Summary,
    doc: &'a Document,
    files: &'a [FileRow],
    snapshot_config: Option<&'a SnapshotConfig>,
    eci: Option<&'a epoch_store::formats::eci::EciImage>,
}

/// The files a snapshot or an OS image unpacks to (none for other kinds),
/// and a snapshot's config.
fn files_of(
    layout: &epoch_store::Layout,
    desc: &Descriptor,
    summary: &Summary,
) -> anyhow::Result<(Vec<FileRow>, Option<SnapshotConfig>)> {
    Ok(match summary.kind {
        epoch_store::model::Kind::Snapshot => {
            let (files, config) = snapshot_files(layout, desc)?;
            (files, Some(config))
        }
        epoch_store::model::Kind::CloudImage => (image_files(layout, desc)?, None),
        _ => (vec![], None),
    })
}

/// With `--json`: everything, and the manifest itself (`raw`, parsed).
fn print_json(s: &Shown<'_>, raw: &[u8]) -> anyhow::Result<()> {
    let manifest: serde_json::Value = serde_json::from_slice(raw)?;
    let (desc, doc) = (s.desc, s.doc);
    crate::output::json(&serde_json::json!({
        "ref": desc.ref_name(),
        "digest": desc.digest,
        "mediaType": desc.media_type,
        "artifactType": doc.artifact_type,
        "kind": s.summary.kind,
        "size": s.summary.size,
        "blobs": s.summary.blobs,
        "annotations": doc.annotations,
        "config": doc.config,
        "layers": doc.layers,
        "manifests": doc.manifests,
        "subject": doc.subject,
        "files": s.files,
        "snapshotConfig": s.snapshot_config,
        "eci": s.eci.map(eci_json),
        "manifest": manifest,
    }))
}

/// For humans: the header, then the config, layers, manifests, files and
/// subject there are.
fn print_human(ctx: &Ctx, s: &Shown<'_>) -> anyhow::Result<()> {
    print_header(ctx, s)?;
    let doc = s.doc;
    for (k, v) in &doc.annotations {
        ctx.answer(format_args!("Annotation:    {k}={v}"))?;
    }
    if let Some(c) = &doc.config {
        ctx.answer(format_args!(
            "Config:        {} {} {}",
            c.media_type,
            size(c.size),
            c.digest
        ))?;
    }
    if let Some(layers) = &doc.layers {
        ctx.answer(format_args!("Layers ({}):", layers.len()))?;
        for l in layers {
            ctx.answer(format_args!(
                "  {:<28} {:>10}  {}  {}",
                l.title().unwrap_or("-"),
                size(l.size),
                l.media_type,
                l.digest
            ))?;
        }
    }
    if let Some(ms) = &doc.manifests {
        ctx.answer(format_args!("Manifests ({}):", ms.len()))?;
        for m in ms {
            ctx.answer(format_args!(
                "  {:<28} {:>10}  {}  {}",
                platform(m),
                size(m.size),
                m.media_type,
                m.digest
            ))?;
        }
    }
    print_files(ctx, s.files)?;
    if let Some(eci) = s.eci {
        print_roles(ctx, eci)?;
    }
    if let Some(subject) = &doc.subject {
        ctx.answer(format_args!(
            "Subject:       {} {}",
            subject.media_type, subject.digest
        ))?;
    }
    Ok(())
}

/// Ref, digest, media and artifact type, kind, a snapshot's VM, total size.
fn print_header(ctx: &Ctx, s: &Shown<'_>) -> anyhow::Result<()> {
    let desc = s.desc;
    if let Some(r) = desc.ref_name() {
        ctx.answer(format_args!("Ref:           {r}"))?;
    }
    ctx.answer(format_args!("Digest:        {}", desc.digest))?;
    ctx.answer(format_args!("Media type:    {}", desc.media_type))?;
    if let Some(at) = &s.doc.artifact_type {
        ctx.answer(format_args!("Artifact type: {at}"))?;
    }
    ctx.answer(format_args!("Kind:          {}", s.summary.kind))?;
    if let Some(c) = s.snapshot_config {
        ctx.answer(format_args!(
            "Snapshot:      id {:?}, {} vCPU, {} memory, {} storage, {} NICs{}",
            c.snapshot_id,
            c.cpu,
            size(c.memory.max(0) as u64),
            size(c.storage.max(0) as u64),
            c.nics,
            if c.image.is_empty() {
                String::new()
            } else {
                format!(", image {}", c.image)
            }
        ))?;
        if !c.created_at.is_empty() {
            ctx.answer(format_args!("Created:       {}", c.created_at))?;
        }
    }
    ctx.answer(format_args!(
        "Total size:    {} in {} blobs ({} bytes)",
        size(s.summary.size),
        s.summary.blobs,
        s.summary.size
    ))?;
    Ok(())
}

/// The files it unpacks to, with their logical and stored sizes.
fn print_files(ctx: &Ctx, files: &[FileRow]) -> anyhow::Result<()> {
    if files.is_empty() {
        return Ok(());
    }
    let logical: u64 = files.iter().map(|f| f.logical_size).sum();
    ctx.answer(format_args!(
        "Files ({}, {} logical):",
        files.len(),
        size(logical)
    ))?;
    for f in files {
        ctx.answer(format_args!(
            "  {:<28} {:>10} logical {:>10} stored  {} chunk{}{}  mode {:o}",
            f.name,
            size(f.logical_size),
            size(f.stored_size),
            f.chunks,
            if f.chunks == 1 { "" } else { "s" },
            if f.compressed { ", zstd" } else { "" },
            f.mode
        ))?;
    }
    Ok(())
}

/// An ECI's format and roles, for `--json`.
fn eci_json(eci: &epoch_store::formats::eci::EciImage) -> serde_json::Value {
    let roles: Vec<_> = eci
        .parts
        .iter()
        .map(|p| {
            serde_json::json!({
                "role": p.role,
                "name": p.name,
                "index": p.index,
                "diskType": p.disk_type,
                "mediaType": p.eci_media_type,
                "packing": p.packing,
                "digest": p.layer.digest,
                "size": p.layer.size,
            })
        })
        .collect();
    serde_json::json!({ "format": eci.format, "roles": roles })
}

/// An ECI's roles: the file each unpacks to, its type and stored size.
fn print_roles(ctx: &Ctx, eci: &epoch_store::formats::eci::EciImage) -> anyhow::Result<()> {
    ctx.answer(format_args!(
        "ECI roles ({}, {} format):",
        eci.parts.len(),
        eci.format
    ))?;
    for p in &eci.parts {
        let role = match p.index {
            Some(i) => format!("{} {i}", p.role),
            None => p.role.to_string(),
        };
        ctx.answer(format_args!(
            "  {:<8} {:<28} {:<6} {:>10} stored  {}",
            role,
            p.name,
            p.disk_type.map_or("-", |t| t.name()),
            size(p.layer.size),
            p.eci_media_type
        ))?;
    }
    Ok(())
}

fn platform(d: &Descriptor) -> String {
    match &d.platform {
        Some(p) => epoch_store::model::platform::describe(p),
        None => d.ref_name().unwrap_or("-").to_string(),
    }
}

/// One file of a snapshot, as `inspect` shows it.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct FileRow {
    name: String,
    logical_size: u64,
    stored_size: u64,
    chunks: usize,
    compressed: bool,
    mode: u32,
}

/// A snapshot's files and its config blob.
fn snapshot_files(
    layout: &epoch_store::Layout,
    desc: &Descriptor,
) -> anyhow::Result<(Vec<FileRow>, SnapshotConfig)> {
    let plan = epoch_store::formats::cocoon::snapshot::plan(layout, desc)?;
    let rows = plan
        .files
        .iter()
        .map(|f| FileRow {
            name: f.name.clone(),
            logical_size: f.map.logical_size(),
            stored_size: f.blob_size(),
            chunks: f.chunks.len(),
            compressed: f.chunks.iter().any(|c| c.zstd),
            mode: f.mode,
        })
        .collect();
    Ok((rows, plan.config))
}

/// An OS image unpacks to one disk file: its parts are its chunks.
fn image_files(layout: &epoch_store::Layout, desc: &Descriptor) -> anyhow::Result<Vec<FileRow>> {
    let plan = epoch_store::formats::cocoon::os_image::plan(layout, desc)?;
    Ok(vec![FileRow {
        name: plan.name,
        logical_size: plan.size,
        stored_size: plan.parts.iter().map(|p| p.size).sum(),
        chunks: plan.parts.len(),
        compressed: false,
        mode: 0o644,
    }])
}
