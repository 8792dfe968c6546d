//! `epoch-store push`.

use std::time::Instant;

use epoch_store::Descriptor;
use epoch_store::transport::registry::{
    self, Client, KnownBlobs, PushOptions, PushPlan, PushReport, Reference, ReferrersPushed,
};

use crate::output::{duration, rate, size};
use crate::remote::RemoteArgs;
use crate::{Ctx, EXIT_OK};

/// Push a ref and everything it reaches to an OCI registry (or, with
/// --all, every ref of the layout).
///
/// Blobs the registry has are skipped (HEAD), blobs another repository of
/// the registry got in this run are mounted from it; the others are
/// uploaded, several at once, streamed from the store (the registry checks
/// each digest as its upload closes); then the manifests, children before the indexes that name
/// them, the ref's last under DEST's tag (default: REF's tag). With
/// --referrers, the layout's referrers of what was pushed (signatures,
/// SBOMs) follow, by digest.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:\n  \
    epoch-store push sre-bot:v1 registry.internal:5000/vms/sre-bot\n  \
    epoch-store push sre-bot:v1 registry.internal:5000/vms/sre-bot --referrers\n  \
    epoch-store push alpine:3.20 127.0.0.1:5000/library/alpine:3.20 --plain-http\n  \
    epoch-store --layout /media/usb/store push --all registry.internal:5000/mirror\n  \
    echo \"$TOKEN\" | epoch-store push app:1 ghcr.io/team/app:1 --username bot --password-stdin\n\n\
Exit codes: 0 pushed, 2 error (unreachable, refused, a damaged blob): what was\n\
put stays, and the same command finishes the push.")]
pub struct Args {
    /// REF DEST: the ref (or digest) to push, and where
    /// (HOST[:PORT]/REPO[:TAG|@DIGEST]); with --all, only DEST:
    /// HOST[:PORT][/PREFIX], each ref NAME:TAG going to PREFIX/NAME:TAG.
    #[arg(value_name = "REF DEST", num_args = 1..=2, required = true)]
    targets: Vec<String>,
    /// Push every ref of the layout (untagged roots are left out).
    #[arg(long)]
    all: bool,
    /// Blobs larger than this go up in PATCHes of this size, in order
    /// (smaller blobs in one PUT); keep it under a proxy's body limit.
    #[arg(long, value_name = "SIZE", default_value = "64MiB", value_parser = parse_chunk)]
    chunk_size: u64,
    /// Also push every manifest of the layout whose subject is one pushed
    /// (signatures, SBOMs), and theirs, by digest after their subject;
    /// where the registry does not answer with OCI-Subject (no referrers
    /// API), add each to its subject's sha256-<hex> fallback tag.
    #[arg(long)]
    referrers: bool,
    #[command(flatten)]
    remote: RemoteArgs,
}

fn parse_chunk(s: &str) -> Result<u64, String> {
    match epoch_store::io::size::parse_size(s) {
        Ok(0) => Err("the chunk size must be more than 0".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

pub fn run(ctx: &Ctx, a: Args) -> anyhow::Result<u8> {
    let layout = ctx.open()?;
    let jobs = plan(&layout, &a)?;
    let options = PushOptions::new(a.remote.jobs as usize, a.chunk_size)
        .with_meter(a.remote.meter(ctx.quiet || ctx.json));
    let client_options = a.remote.options(&jobs[0].2.host)?;
    let known = KnownBlobs::in_layout(&layout, &jobs[0].2.host);
    let started = Instant::now();
    let mut rows = Vec::new();
    let pushed = jobs.iter().try_for_each(|(source, root, dest)| {
        let client = Client::new(dest, &client_options)?;
        let plan = registry::plan_push(&layout, root, &client, options.jobs)?;
        let row = if a.remote.dry_run {
            would_push(ctx, source, dest, root, &plan)?
        } else {
            let report = registry::push(&layout, &plan, &client, dest, &options, &known)?;
            let referrers = a
                .referrers
                .then(|| registry::push_referrers(&layout, root, &client, dest, &options, &known))
                .transpose()?;
            if !ctx.json {
                say(ctx, source, dest, root, &report, started.elapsed())?;
                if let Some(r) = &referrers {
                    say_referrers(ctx, r)?;
                }
            }
            pushed_row(source, dest, root, &report, referrers.as_ref())
        };
        rows.push(row);
        anyhow::Ok(())
    });
    // What the registry holds now, for the mounts of the next push (also
    // after a failure: what went up stays there).
    if !a.remote.dry_run {
        known.save();
    }
    pushed?;
    if ctx.json {
        let seconds = started.elapsed().as_secs_f64();
        let mut v = if a.all {
            serde_json::json!({ "pushed": rows })
        } else {
            rows.pop().expect("one push")
        };
        v["seconds"] = serde_json::json!(seconds);
        if a.remote.dry_run {
            v["dryRun"] = serde_json::json!(true);
        }
        crate::output::json(&v)?;
    }
    Ok(EXIT_OK)
}

/// The JSON row of one push.
fn pushed_row(
    source: &str,
    dest: &Reference,
    root: &Descriptor,
    report: &PushReport,
    referrers: Option<&ReferrersPushed>,
) -> serde_json::Value {
    let mut row = serde_json::json!({
        "ref": source,
        "to": dest.to_string(),
        "digest": root.digest,
        "documents": report.documents,
        "blobs": report.blobs,
        "blobsSkipped": report.blobs_skipped,
        "blobsMounted": report.blobs_mounted,
        "bytes": report.bytes,
        "retries": report.retries,
        "resentBytes": report.resent_bytes,
        "resumedBytes": report.resumed_bytes,
    });
    if let Some(r) = referrers {
        row["referrers"] = serde_json::json!(r.referrers);
        row["referrerDocuments"] = serde_json::json!(r.documents);
        row["referrerBlobs"] = serde_json::json!(r.blobs);
        row["fallbackTags"] = serde_json::json!(r.fallback_tags);
    }
    row
}

/// `--dry-run`: says what the push of `source` would send; its JSON row.
fn would_push(
    ctx: &Ctx,
    source: &str,
    dest: &Reference,
    root: &Descriptor,
    plan: &PushPlan,
) -> anyhow::Result<serde_json::Value> {
    let (blobs, bytes) = plan.to_send();
    if !ctx.json {
        ctx.answer(format_args!(
            "Would push {source} to {dest} ({}): {blobs} blob{} to send ({}), {} already there, {} document{}",
            root.digest,
            if blobs == 1 { "" } else { "s" },
            size(bytes),
            plan.there(),
            plan.documents(),
            if plan.documents() == 1 { "" } else { "s" },
        ))?;
    }
    Ok(serde_json::json!({
        "ref": source,
        "to": dest.to_string(),
        "digest": root.digest,
        "documents": plan.documents(),
        "blobs": blobs,
        "blobsSkipped": plan.there(),
        "bytes": bytes,
    }))
}

/// What goes where: (ref, root, destination), all checked before anything
/// is sent.
fn plan(
    layout: &epoch_store::Layout,
    a: &Args,
) -> anyhow::Result<Vec<(String, Descriptor, Reference)>> {
    if a.all {
        let [dest] = a.targets.as_slice() else {
            anyhow::bail!("with --all, give only the destination: HOST[:PORT][/PREFIX]");
        };
        let dest = dest
            .strip_prefix("docker://")
            .unwrap_or(dest)
            .trim_end_matches('/');
        let mut jobs = Vec::new();
        for (name, desc) in layout.read_index()?.refs() {
            let (repo, tag) = epoch_store::split_tag(name);
            let at = format!("{dest}/{repo}:{}", tag.unwrap_or("latest"));
            let reference: Reference = at.parse().map_err(|e: String| {
                anyhow::anyhow!("ref {name:?} cannot go to the registry as {at}: {e}; give it a name the registry takes with `epoch-store tag`")
            })?;
            jobs.push((name.to_string(), desc.clone(), reference));
        }
        if jobs.is_empty() {
            anyhow::bail!("the layout has no refs to push");
        }
        return Ok(jobs);
    }
    let [source, dest] = a.targets.as_slice() else {
        anyhow::bail!(
            "give the ref to push and where: REF HOST[:PORT]/REPO[:TAG] (or --all HOST[:PORT][/PREFIX])"
        );
    };
    let mut dest: Reference = dest.parse().map_err(|e: String| anyhow::anyhow!(e))?;
    let root = layout.resolve(source)?;
    if dest.tag.is_none() && dest.digest.is_none() {
        let (_, tag) = epoch_store::split_tag(source);
        dest.tag = Some(
            tag.filter(|t| registry::reference::valid_tag(t))
                .unwrap_or("latest")
                .to_string(),
        );
    }
    Ok(vec![(source.clone(), root, dest)])
}

fn say(
    ctx: &Ctx,
    source: &str,
    dest: &Reference,
    root: &Descriptor,
    report: &PushReport,
    elapsed: std::time::Duration,
) -> anyhow::Result<()> {
    let mut mounted = if report.blobs_mounted > 0 {
        format!(", {} mounted", report.blobs_mounted)
    } else {
        String::new()
    };
    if report.resumed_bytes > 0 {
        mounted.push_str(&format!(
            ", {} an earlier push had sent",
            size(report.resumed_bytes)
        ));
    }
    ctx.say(format_args!(
        "Pushed {} to {} ({}): {} blob{} sent ({}), {} already there{}, {} document{} in {} ({})",
        source,
        dest,
        root.digest,
        report.blobs,
        if report.blobs == 1 { "" } else { "s" },
        size(report.bytes),
        report.blobs_skipped,
        mounted,
        report.documents,
        if report.documents == 1 { "" } else { "s" },
        duration(elapsed),
        rate(report.bytes, elapsed)
    ))?;
    Ok(())
}

fn say_referrers(ctx: &Ctx, r: &ReferrersPushed) -> anyhow::Result<()> {
    ctx.say(format_args!(
        "  and {} referrer{} ({} document{}, {} blob{} sent{})",
        r.referrers,
        if r.referrers == 1 { "" } else { "s" },
        r.documents,
        if r.documents == 1 { "" } else { "s" },
        r.blobs,
        if r.blobs == 1 { "" } else { "s" },
        if r.fallback_tags > 0 {
            format!(
                ", {} fallback tag{} written: the registry did not say OCI-Subject",
                r.fallback_tags,
                if r.fallback_tags == 1 { "" } else { "s" }
            )
        } else {
            String::new()
        }
    ))?;
    Ok(())
}
