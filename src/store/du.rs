//! Disk usage: what each manifest stores, what it shares, and what gc would
//! free without it.
//!
//! Rows are per **manifest digest**, not per ref: every `index.json` entry
//! pointing at one digest (its tags, and untagged entries) is one row, and
//! its unique bytes are what untagging *all* of those entries and running gc
//! would free. A manifest tagged twice therefore shows both refs on one row:
//! untagging only one of them frees nothing, because the other still reaches
//! every blob.
//!
//! Bytes are the sizes of the blob files on disk (what gc removes), each blob
//! counted once per row. A blob a manifest references but which is absent
//! from `blobs/` counts for nothing (it would free nothing) and is reported.

use std::collections::{HashMap, HashSet};

use rayon::prelude::*;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::io::digest::Digest;
use crate::store::graph::Graph;
use crate::store::inventory::Inventory;
use crate::store::layout::{Layout, looks_like_digest};

/// One manifest digest of `index.json` and what it reaches.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DuRow {
    /// The ref names pointing at this digest, in index order.
    pub refs: Vec<String>,
    /// Untagged `index.json` entries pointing at it (roots for gc too).
    pub untagged: usize,
    /// The manifest (or index) digest.
    pub digest: Digest,
    /// Distinct blobs it reaches that are present, itself included.
    pub blobs: usize,
    /// Their bytes on disk.
    pub stored: u64,
    /// Bytes of the blobs no other digest's entries reach: what untagging
    /// every ref of this row (and dropping its untagged entries), then gc,
    /// frees.
    pub unique: u64,
    /// `stored - unique`: bytes some other manifest also reaches.
    pub shared: u64,
    /// Blobs it references that are absent from `blobs/` (not counted).
    pub missing_blobs: usize,
    /// Why its numbers are incomplete (a document on the way could not be
    /// read), if they are.
    pub problem: Option<String>,
}

/// Disk usage of a layout: rows, and totals for the whole layout.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DuReport {
    /// The rows asked for (every manifest digest of `index.json` when no
    /// ref was given), in index order.
    pub rows: Vec<DuRow>,
    /// Blob files under `blobs/`.
    pub layout_blobs: usize,
    /// Their bytes.
    pub layout_bytes: u64,
    /// Blobs reachable from any `index.json` entry and present.
    pub reachable_blobs: usize,
    /// Their bytes.
    pub reachable_bytes: u64,
    /// Blobs nothing reaches: what `gc` would remove now if the grace period
    /// were 0 (it keeps those younger than `--grace`, 24 h by default).
    pub unreferenced_blobs: usize,
    /// Their bytes.
    pub unreferenced_bytes: u64,
    /// Leftover temp files of interrupted writes (gc removes them too,
    /// after the grace period).
    pub temp_files: usize,
    /// Their bytes.
    pub temp_bytes: u64,
    /// Documents that could not be read: while there are any, what they
    /// reference is unknown and the numbers above are lower bounds for
    /// reach (and upper bounds for unique and unreferenced bytes).
    pub problems: Vec<String>,
}

impl DuReport {
    /// Whether every reachable document could be read.
    pub fn is_complete(&self) -> bool {
        self.problems.is_empty()
    }
}

/// The `index.json` entries that point at one digest.
struct Group {
    refs: Vec<String>,
    untagged: usize,
    /// Index of its first entry, the root walked for it.
    first: usize,
}

/// Computes disk usage. With `refs` empty, every manifest digest of
/// `index.json` gets a row; otherwise only the rows of the given refs or
/// digests (uniqueness is still judged against every entry).
///
/// # Errors
/// A ref not in `index.json`, a digest no entry points at, errors reading
/// `index.json` or listing `blobs/`.
pub fn disk_usage(layout: &Layout, refs: &[&str]) -> Result<DuReport> {
    let index = layout.read_index()?;
    let entries = index.entries();
    let (order, groups) = group_by_digest(entries);
    let wanted: Option<HashSet<Digest>> = if refs.is_empty() {
        None
    } else {
        let picked = refs.iter().map(|spec| select(layout, &index, spec));
        Some(picked.collect::<Result<_>>()?)
    };
    let (walks, inventory) = rayon::join(
        || {
            order
                .par_iter()
                .map(|d| Graph::walk(layout, std::slice::from_ref(&entries[groups[d].first])))
                .collect::<Vec<Graph>>()
        },
        || Inventory::scan(layout),
    );
    let inventory = inventory?;
    let sizes: HashMap<&Digest, u64> = inventory
        .blobs
        .par_iter()
        .map(|(d, f)| Ok((d, f.stat()?.0)))
        .collect::<Result<_>>()?;
    let mut report = DuReport {
        layout_blobs: sizes.len(),
        layout_bytes: sizes.values().sum(),
        ..DuReport::default()
    };
    for f in &inventory.temp_files {
        report.temp_files += 1;
        report.temp_bytes += f.stat()?.0;
    }
    // Which rows reach each blob.
    let reach: Vec<HashSet<&Digest>> = walks
        .iter()
        .map(|g| g.edges.iter().map(|e| &e.digest).collect())
        .collect();
    let mut reached_by: HashMap<&Digest, usize> = HashMap::new();
    for d in reach.iter().flatten() {
        *reached_by.entry(d).or_default() += 1;
    }
    for (d, size) in &sizes {
        if reached_by.contains_key(d) {
            report.reachable_blobs += 1;
            report.reachable_bytes += size;
        } else {
            report.unreferenced_blobs += 1;
            report.unreferenced_bytes += size;
        }
    }
    for ((digest, graph), set) in order.iter().zip(&walks).zip(&reach) {
        let problem = graph.failures.first().map(|(desc, e)| {
            format!(
                "{} of its documents cannot be read ({}: {e}); run `epoch-store verify`",
                graph.failures.len(),
                desc.digest
            )
        });
        if let Some(p) = &problem {
            report.problems.push(format!("{digest}: {p}"));
        }
        if wanted.as_ref().is_none_or(|w| w.contains(digest)) {
            let row = tally(digest, &groups[digest], set, &sizes, &reached_by, problem);
            report.rows.push(row);
        }
    }
    Ok(report)
}

/// The entries grouped by digest: the digests in index order, and each
/// one's group.
fn group_by_digest(entries: &[crate::Descriptor]) -> (Vec<Digest>, HashMap<Digest, Group>) {
    let mut order: Vec<Digest> = Vec::new();
    let mut groups: HashMap<Digest, Group> = HashMap::new();
    for (i, e) in entries.iter().enumerate() {
        let g = groups.entry(e.digest.clone()).or_insert_with(|| {
            order.push(e.digest.clone());
            Group {
                refs: Vec::new(),
                untagged: 0,
                first: i,
            }
        });
        match e.ref_name() {
            Some(r) => g.refs.push(r.to_string()),
            None => g.untagged += 1,
        }
    }
    (order, groups)
}

/// One row: the blobs `set` reaches that are present, their bytes, and
/// those no other row reaches.
fn tally(
    digest: &Digest,
    group: &Group,
    set: &HashSet<&Digest>,
    sizes: &HashMap<&Digest, u64>,
    reached_by: &HashMap<&Digest, usize>,
    problem: Option<String>,
) -> DuRow {
    let mut out = DuRow {
        refs: group.refs.clone(),
        untagged: group.untagged,
        digest: digest.clone(),
        blobs: 0,
        stored: 0,
        unique: 0,
        shared: 0,
        missing_blobs: 0,
        problem,
    };
    for d in set {
        let Some(size) = sizes.get(d) else {
            out.missing_blobs += 1;
            continue;
        };
        out.blobs += 1;
        out.stored += size;
        if reached_by[d] == 1 {
            out.unique += size;
        }
    }
    out.shared = out.stored - out.unique;
    out
}

/// The digest of the entry `spec` (a ref name or a digest) names.
fn select(layout: &Layout, index: &crate::Index, spec: &str) -> Result<Digest> {
    if looks_like_digest(spec) {
        let digest = Digest::parse(spec)?;
        if index.contains_digest(&digest) {
            return Ok(digest);
        }
        return Err(Error::InvalidArgument(format!(
            "{digest} is not an index.json entry; du reports refs and untagged roots \
             (run `epoch-store ls` to see them)"
        )));
    }
    Ok(layout.resolve_in(index, spec)?.digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn du_counts_shared_and_unique_per_digest() -> Result<()> {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::init(dir.path().join("l"))?;
        let w = layout.writer()?;
        let shared = w.put_bytes("application/octet-stream", &[1u8; 1000])?;
        let only_a = w.put_bytes("application/octet-stream", &[2u8; 300])?;
        let only_b = w.put_bytes("application/octet-stream", &[3u8; 50])?;
        let a = crate::store::artifact::files_manifest(
            &w,
            &[shared.clone(), only_a.clone()],
            None,
            None,
        )?;
        let b = crate::store::artifact::files_manifest(
            &w,
            &[shared.clone(), only_b.clone()],
            None,
            None,
        )?;
        let stray = w.put_bytes("application/octet-stream", &[4u8; 7])?;
        w.update_index(|i| {
            i.set_ref(&"a:1".parse().unwrap(), &a);
            i.set_ref(&"a:latest".parse().unwrap(), &a);
            i.set_ref(&"b:1".parse().unwrap(), &b);
            Ok(())
        })?;
        drop(w);
        let r = disk_usage(&layout, &[])?;
        assert_eq!(r.rows.len(), 2, "a manifest tagged twice is one row");
        assert_eq!(r.rows[0].refs, ["a:1", "a:latest"]);
        // Each manifest has an (identical) empty config; it is shared.
        let ra = &r.rows[0];
        assert_eq!(ra.unique, a.size + only_a.size);
        assert_eq!(ra.stored, ra.unique + ra.shared);
        assert!(ra.shared >= shared.size);
        let rb = &r.rows[1];
        assert_eq!(rb.unique, b.size + only_b.size);
        assert_eq!(r.unreferenced_bytes, stray.size);
        assert_eq!(r.unreferenced_blobs, 1);
        assert_eq!(r.layout_bytes, r.reachable_bytes + r.unreferenced_bytes);
        assert!(r.is_complete());
        let only = disk_usage(&layout, &["a:latest"])?;
        assert_eq!(only.rows.len(), 1);
        assert_eq!(only.rows[0].unique, ra.unique);
        assert!(disk_usage(&layout, &["nope:1"]).is_err());
        Ok(())
    }
}
