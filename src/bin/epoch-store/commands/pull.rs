//! `epoch-store pull`.

use std::time::{Duration, Instant};

use epoch_store::RefName;
use epoch_store::transport::registry::{
    self, Client, PullOptions, PullPlan, PullReport, Reference, ReferrersPulled,
};

use crate::output::{duration, rate, size};
use crate::remote::{RemoteArgs, parse_reference};
use crate::{Ctx, EXIT_OK};

/// Pull an image, index or artifact from an OCI registry into the layout.
///
/// The manifest (or index, followed to every image) and every blob it
/// reaches are fetched, several at once, each verified while it is written
/// and published with the store's protocol; blobs the layout has are not
/// fetched. The ref is tagged last, once everything is durable. With
/// --referrers, the signatures, SBOMs and other referrers of what was
/// pulled come too (and theirs), each an untagged entry of the layout.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:\n  \
    epoch-store pull registry.internal:5000/vms/sre-bot:v1\n  \
    epoch-store pull 127.0.0.1:5000/library/alpine:3.20 --plain-http --ref alpine:3.20\n  \
    epoch-store pull registry.internal/library/debian:12 --platform linux/arm64 --platform linux/amd64\n  \
    epoch-store pull registry.internal:5000/vms/sre-bot:v1 --referrers\n\n\
Exit codes: 0 pulled, 2 error (unreachable, refused, a wrong digest or size):\n\
nothing is tagged then, and the same command finishes the pull.")]
pub struct Args {
    /// What to pull: HOST[:PORT]/REPO[:TAG|@DIGEST].
    #[arg(value_name = "SRC", value_parser = parse_reference)]
    source: Reference,
    /// The local ref to tag it as (default: REPO:TAG; by digest only:
    /// untagged).
    #[arg(long = "ref", value_name = "REF")]
    ref_name: Option<String>,
    /// Move the ref if it names something else already.
    #[arg(long)]
    force: bool,
    /// Of an index, pull only the image for this platform (its best match
    /// by containerd's rules), under a new index of the images chosen;
    /// repeatable. What is not an index is pulled whole.
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    platform: Vec<epoch_store::model::platform::PlatformSpec>,
    /// Also pull the referrers (manifests whose subject is one pulled:
    /// signatures, SBOMs) and theirs, through the registry's referrers API
    /// or, without it, the sha256-<hex> fallback tags; each becomes an
    /// untagged entry of the layout.
    #[arg(long)]
    referrers: bool,
    #[command(flatten)]
    remote: RemoteArgs,
}

pub fn run(ctx: &Ctx, a: Args) -> anyhow::Result<u8> {
    let ref_name = match (&a.ref_name, &a.source.tag, &a.source.digest) {
        (Some(r), _, _) => Some(r.clone()),
        (None, Some(t), _) => Some(format!("{}:{t}", a.source.repository)),
        (None, None, Some(_)) => None,
        (None, None, None) => Some(format!("{}:latest", a.source.repository)),
    };
    let ref_name = ref_name
        .map(|r| epoch_store::RefName::new(r.as_str()))
        .transpose()?;
    let layout = ctx.open_or_create("pull")?;
    let client = Client::new(&a.source, &a.remote.options(&a.source.host)?)?;
    let started = Instant::now();
    let plan = registry::plan_pull(&layout, &client, &a.source, &a.platform)?;
    if !a.force
        && let Some(r) = &ref_name
        && let Some(old) = layout.read_index()?.find(r.as_str())?
        && old.digest != plan.root().digest
    {
        anyhow::bail!(
            "{} names {} already (the registry has {}); pass --force to move it, or --ref to pick another name",
            r.as_str(),
            old.digest,
            plan.root().digest
        );
    }
    if a.remote.dry_run {
        return dry_run(ctx, &a, ref_name.as_ref(), &plan);
    }
    let writer = ctx.writer(&layout)?;
    let options = PullOptions::new(
        a.remote.jobs as usize,
        a.remote.meter(ctx.quiet || ctx.json),
    );
    let report = registry::pull(&writer, &client, &plan, &options)?;
    let referrers = a
        .referrers
        .then(|| registry::pull_referrers(&writer, &client, &a.source, &report.root, &options))
        .transpose()?;
    writer.update_index(|index| {
        for entry in referrers.iter().flat_map(|r| &r.entries) {
            index.add_untagged(entry);
        }
        match &ref_name {
            Some(r) => {
                index.set_ref(r, &report.root);
            }
            None => index.add_untagged(&report.root),
        }
        Ok(())
    })?;
    show(
        ctx,
        &a,
        ref_name.as_ref(),
        &report,
        referrers.as_ref(),
        started.elapsed(),
    )
}

/// What was pulled, as JSON or a line (and one more for the referrers).
fn show(
    ctx: &Ctx,
    a: &Args,
    ref_name: Option<&RefName>,
    report: &PullReport,
    referrers: Option<&ReferrersPulled>,
    elapsed: Duration,
) -> anyhow::Result<u8> {
    let shown = ref_name.map_or("(untagged)", |r| r.as_str());
    if ctx.json {
        let mut v = serde_json::json!({
            "from": a.source.to_string(),
            "ref": ref_name.map(|r| r.as_str()),
            "digest": report.root.digest,
            "documents": report.documents,
            "blobs": report.blobs,
            "blobsSkipped": report.blobs_skipped,
            "bytes": report.bytes,
            "retries": report.retries,
            "resumedBytes": report.resumed_bytes,
            "resumedBlobs": report.resumed_blobs,
            "seconds": elapsed.as_secs_f64(),
        });
        if let Some(r) = referrers {
            v["referrers"] = serde_json::json!(r.entries.len());
            v["referrerDocuments"] = serde_json::json!(r.documents);
            v["referrerBlobs"] = serde_json::json!(r.blobs);
            v["fallbackTags"] = serde_json::json!(r.fallback_tags);
        }
        return crate::output::json(&v).map(|()| EXIT_OK);
    }
    ctx.say(format_args!(
        "Pulled {} as {} ({}): {} blob{} fetched ({}), {} already here, {} document{} in {} ({})",
        a.source,
        shown,
        report.root.digest,
        report.blobs,
        if report.blobs == 1 { "" } else { "s" },
        size(report.bytes),
        report.blobs_skipped,
        report.documents,
        if report.documents == 1 { "" } else { "s" },
        duration(elapsed),
        rate(report.bytes, elapsed)
    ))?;
    if let Some(r) = referrers {
        ctx.say(format_args!(
            "  and {} referrer{} ({} document{}, {} blob{} fetched{})",
            r.entries.len(),
            if r.entries.len() == 1 { "" } else { "s" },
            r.documents,
            if r.documents == 1 { "" } else { "s" },
            r.blobs,
            if r.blobs == 1 { "" } else { "s" },
            if r.fallback_tags > 0 {
                format!(", {} through fallback tags", r.fallback_tags)
            } else {
                String::new()
            }
        ))?;
    }
    Ok(EXIT_OK)
}

/// `--dry-run`: what the pull would fetch.
fn dry_run(
    ctx: &Ctx,
    a: &Args,
    ref_name: Option<&epoch_store::RefName>,
    plan: &PullPlan,
) -> anyhow::Result<u8> {
    let (blobs, bytes) = plan.to_fetch();
    if ctx.json {
        crate::output::json(&serde_json::json!({
            "dryRun": true,
            "from": a.source.to_string(),
            "ref": ref_name.map(|r| r.as_str()),
            "digest": plan.root().digest,
            "documents": plan.documents(),
            "blobs": blobs,
            "blobsSkipped": plan.there(),
            "bytes": bytes,
        }))?;
        return Ok(EXIT_OK);
    }
    ctx.answer(format_args!(
        "Would pull {} as {} ({}): {} blob{} to fetch ({}), {} already here, {} document{}",
        a.source,
        ref_name.map_or("(untagged)", |r| r.as_str()),
        plan.root().digest,
        blobs,
        if blobs == 1 { "" } else { "s" },
        size(bytes),
        plan.there(),
        plan.documents(),
        if plan.documents() == 1 { "" } else { "s" },
    ))?;
    Ok(EXIT_OK)
}
