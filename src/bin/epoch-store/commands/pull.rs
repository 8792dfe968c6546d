//! `epoch-store pull`.

use std::time::{Duration, Instant};

use epoch_store::RefName;
use epoch_store::transport::registry::{
    self, Client, PullOptions, PullPlan, PullReport, Reference, ReferrersPulled,
};

use crate::output::{duration, rate, size};
use crate::remote::{RemoteArgs, parse_reference};
use crate::{Ctx, EXIT_OK};

/// Pull images, indexes or artifacts from an OCI registry into the layout.
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
    epoch-store pull registry.internal:5000/vms/sre-bot:v1 --referrers\n  \
    epoch-store pull registry.internal:5000/vms/a:1 registry.internal:5000/vms/b:1 --dry-run\n\n\
Exit codes: 0 pulled, 2 error (unreachable, refused, a wrong digest or size):\n\
what failed is not tagged (the sources before it are), and the same command\n\
finishes the pull.")]
pub struct Args {
    /// What to pull: HOST[:PORT]/REPO[:TAG|@DIGEST], one or more (pulled
    /// in turn, each tagged once it is whole).
    #[arg(value_name = "SRC", value_parser = parse_reference, num_args = 1.., required = true)]
    sources: Vec<Reference>,
    /// The local ref to tag it as (default: REPO:TAG; by digest only:
    /// untagged); with one SRC only.
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
    if a.ref_name.is_some() && a.sources.len() > 1 {
        anyhow::bail!(
            "--ref names one pull: give one SRC with it (the others are tagged REPO:TAG)"
        );
    }
    let hosts: std::collections::BTreeSet<&str> =
        a.sources.iter().map(|s| s.host.as_str()).collect();
    if hosts.len() > 1 && a.remote.connect.username.is_some() {
        anyhow::bail!(
            "--password-stdin gives one registry's password: pull from one registry at a time with it"
        );
    }
    let layout = ctx.open_or_create("pull")?;
    let meter = a.remote.meter(ctx.quiet || ctx.json);
    let options = PullOptions::new(a.remote.jobs as usize, meter);
    let started = Instant::now();
    let mut connect = std::collections::BTreeMap::new();
    let mut rows = Vec::new();
    for source in &a.sources {
        if !connect.contains_key(&source.host) {
            connect.insert(source.host.clone(), a.remote.options(&source.host)?);
        }
        let client = Client::new(source, &connect[&source.host])?;
        rows.push(pull_one(ctx, &a, &layout, &client, source, &options)?);
    }
    if ctx.json {
        let seconds = serde_json::json!(started.elapsed().as_secs_f64());
        let v = if let [one] = rows.as_mut_slice() {
            one["seconds"] = seconds;
            one.take()
        } else {
            serde_json::json!({ "pulled": rows, "seconds": seconds })
        };
        crate::output::json(&v)?;
    }
    Ok(EXIT_OK)
}

/// The local ref `source` is tagged as.
fn ref_for(a: &Args, source: &Reference) -> anyhow::Result<Option<RefName>> {
    let name = match (&a.ref_name, &source.tag, &source.digest) {
        (Some(r), _, _) => Some(r.clone()),
        (None, Some(t), _) => Some(format!("{}:{t}", source.repository)),
        (None, None, Some(_)) => None,
        (None, None, None) => Some(format!("{}:latest", source.repository)),
    };
    Ok(name.map(|r| RefName::new(r.as_str())).transpose()?)
}

/// Pulls (or with --dry-run, plans) one source; its JSON row, having said
/// it on stdout unless --json.
fn pull_one(
    ctx: &Ctx,
    a: &Args,
    layout: &epoch_store::Layout,
    client: &Client,
    source: &Reference,
    options: &PullOptions,
) -> anyhow::Result<serde_json::Value> {
    let ref_name = ref_for(a, source)?;
    let started = Instant::now();
    let plan = registry::plan_pull(layout, client, source, &a.platform)?;
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
        return dry_run(ctx, source, ref_name.as_ref(), &plan);
    }
    let writer = ctx.writer(layout)?;
    let report = registry::pull(&writer, client, &plan, options)?;
    let referrers = a
        .referrers
        .then(|| registry::pull_referrers(&writer, client, source, &report.root, options))
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
        source,
        ref_name.as_ref(),
        &report,
        referrers.as_ref(),
        started.elapsed(),
    )
}

/// What was pulled: said as a line (and one more for the referrers)
/// unless --json; its JSON row.
fn show(
    ctx: &Ctx,
    source: &Reference,
    ref_name: Option<&RefName>,
    report: &PullReport,
    referrers: Option<&ReferrersPulled>,
    elapsed: Duration,
) -> anyhow::Result<serde_json::Value> {
    let shown = ref_name.map_or("(untagged)", |r| r.as_str());
    let mut v = serde_json::json!({
        "from": source.to_string(),
        "ref": ref_name.map(|r| r.as_str()),
        "digest": report.root.digest,
        "documents": report.documents,
        "blobs": report.blobs,
        "blobsSkipped": report.blobs_skipped,
        "bytes": report.bytes,
        "retries": report.retries,
        "resumedBytes": report.resumed_bytes,
        "resumedBlobs": report.resumed_blobs,
    });
    if let Some(r) = referrers {
        v["referrers"] = serde_json::json!(r.entries.len());
        v["referrerDocuments"] = serde_json::json!(r.documents);
        v["referrerBlobs"] = serde_json::json!(r.blobs);
        v["fallbackTags"] = serde_json::json!(r.fallback_tags);
    }
    if ctx.json {
        return Ok(v);
    }
    ctx.say(format_args!(
        "Pulled {} as {} ({}): {} blob{} fetched ({}), {} already here, {} document{} in {} ({})",
        source,
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
    Ok(v)
}

/// `--dry-run`: what the pull of `source` would fetch; its JSON row.
fn dry_run(
    ctx: &Ctx,
    source: &Reference,
    ref_name: Option<&RefName>,
    plan: &PullPlan,
) -> anyhow::Result<serde_json::Value> {
    let (blobs, bytes) = plan.to_fetch();
    if !ctx.json {
        ctx.answer(format_args!(
            "Would pull {} as {} ({}): {} blob{} to fetch ({}), {} already here, {} document{}",
            source,
            ref_name.map_or("(untagged)", |r| r.as_str()),
            plan.root().digest,
            blobs,
            if blobs == 1 { "" } else { "s" },
            size(bytes),
            plan.there(),
            plan.documents(),
            if plan.documents() == 1 { "" } else { "s" },
        ))?;
    }
    Ok(serde_json::json!({
        "dryRun": true,
        "from": source.to_string(),
        "ref": ref_name.map(|r| r.as_str()),
        "digest": plan.root().digest,
        "documents": plan.documents(),
        "blobs": blobs,
        "blobsSkipped": plan.there(),
        "bytes": bytes,
    }))
}
