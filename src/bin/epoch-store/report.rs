//! What the commands that store one tagged artifact (`pack`, `import-tar`)
//! share: tagging it, and its JSON report.

use crate::Ctx;

/// Tags a manifest just written as `ref_name` and sums up what it reaches.
pub(crate) fn tag_and_summarize(
    layout: &epoch_store::Layout,
    writer: &epoch_store::Writer<'_>,
    ref_name: &str,
    manifest: &epoch_store::Descriptor,
) -> anyhow::Result<epoch_store::Summary> {
    writer.update_index(|index| {
        index.set_ref(&epoch_store::RefName::new(ref_name)?, manifest);
        Ok(())
    })?;
    Ok(layout.summarize(manifest)?)
}

/// With `--json`: `{"ref", "digest", "artifactType", "size"}` plus `extra`'s fields.
pub(crate) fn report_json(
    ctx: &Ctx,
    ref_name: &str,
    summary: &epoch_store::Summary,
    extra: serde_json::Value,
) -> anyhow::Result<()> {
    if !ctx.json {
        return Ok(());
    }
    let mut v = serde_json::json!({
        "ref": ref_name,
        "digest": summary.descriptor.digest,
        "artifactType": summary.descriptor.artifact_type,
        "size": summary.size,
    });
    if let (Some(v), serde_json::Value::Object(extra)) = (v.as_object_mut(), extra) {
        v.extend(extra);
    }
    crate::output::json(&v)
}
