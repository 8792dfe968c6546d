//! Garbage collection: plan, then apply.
//!
//! Roots are every `index.json` entry, tagged or not. A blob is garbage when
//! nothing reachable from a root points to it and it is older than the grace
//! period; temp files older than the grace period are abandoned writes.
//! Two defences keep live data: epoch-store writers hold a shared lock for
//! their whole run, which [`Layout::gc`] takes exclusively, and the grace
//! period covers tools that do not know the lock (skopeo, oras, umoci).

mod sweep;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::io::digest::Digest;
use crate::io::durable;
use crate::io::progress::Progress;
use crate::store::graph::Graph;
use crate::store::inventory::Inventory;
use crate::store::layout::Layout;
use crate::store::lock::GC_LOCK;
use crate::store::lock::{self, Mode};
use sweep::{Candidate, Outcome};

/// Options for gc.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct GcOptions {
    /// Unreachable blobs and temp files younger than this are kept (default 24 h).
    pub grace: Duration,
}

impl Default for GcOptions {
    fn default() -> Self {
        GcOptions {
            grace: Duration::from_secs(24 * 3600),
        }
    }
}

impl GcOptions {
    /// Sets the grace period.
    pub fn grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }
}

/// One file gc would remove.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Garbage {
    /// Its path.
    pub path: PathBuf,
    /// The blob's digest; `None` for a temp file.
    pub digest: Option<Digest>,
    /// Its size in bytes.
    pub size: u64,
}

/// What gc found and would do.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GcPlan {
    /// `index.json` entries.
    pub roots: usize,
    /// Blobs reachable from them, present on disk.
    pub reachable_blobs: usize,
    /// Their bytes.
    pub reachable_bytes: u64,
    /// Unreachable blobs to remove.
    pub blobs: Vec<Garbage>,
    /// Abandoned temp files to remove.
    pub temp_files: Vec<Garbage>,
    /// Unreachable blobs kept because they are younger than the grace period.
    pub young_blobs: usize,
    /// Their bytes.
    pub young_bytes: u64,
    /// Unreachable blobs kept because their modification time is in the
    /// future (a clock was wrong when they were written or touched): their
    /// age is unknown, so no grace period can be judged.
    pub future_blobs: usize,
    /// Their bytes.
    pub future_bytes: u64,
}

impl GcPlan {
    /// Bytes the plan frees.
    pub fn bytes(&self) -> u64 {
        self.blobs
            .iter()
            .chain(&self.temp_files)
            .map(|g| g.size)
            .sum()
    }
}

/// What gc did.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GcReport {
    /// The plan that was applied.
    pub plan: GcPlan,
    /// Blobs removed.
    pub removed_blobs: usize,
    /// Temp files removed.
    pub removed_temp_files: usize,
    /// Bytes freed.
    pub removed_bytes: u64,
}

impl Layout {
    /// Plans a gc without changing anything or taking a lock (`--dry-run`).
    ///
    /// # Errors
    /// [`Error::GcRefused`] when a reachable document is missing or damaged
    /// (its children are unknown, so nothing can be called garbage), and
    /// errors reading `index.json` or listing `blobs/`.
    pub fn plan_gc(&self, options: &GcOptions) -> Result<GcPlan> {
        Ok(self.gc_pass(options, false, None)?.plan)
    }

    /// Applies a plan made earlier by [`Layout::plan_gc`] (shown to a user,
    /// say): takes the gc lock as [`Layout::gc`] does, judges again under
    /// it, and removes only what both judgements call garbage. A blob that
    /// became reachable, or was written again, since the plan is kept; what
    /// became garbage since is left for the next gc.
    ///
    /// # Errors
    /// As [`Layout::gc`].
    pub fn apply_gc(
        &self,
        plan: GcPlan,
        options: &GcOptions,
        progress: &dyn Progress,
    ) -> Result<GcReport> {
        let planned: HashSet<PathBuf> = plan
            .blobs
            .into_iter()
            .chain(plan.temp_files)
            .map(|g| g.path)
            .collect();
        let _lock = self.gc_lock(progress)?;
        self.gc_pass(options, true, Some(&planned))
    }

    /// Takes the gc lock exclusively (waiting for running writers), plans
    /// under it, and removes the garbage; then fsyncs the blob directories.
    ///
    /// # Errors
    /// As [`Layout::plan_gc`], and I/O errors removing files (files already
    /// gone are fine).
    pub fn gc(&self, options: &GcOptions) -> Result<GcReport> {
        self.gc_with(options, &crate::NoProgress)
    }

    /// [`Layout::gc`], telling `progress` when it has to wait for running
    /// writers (naming their process ids where the system says).
    ///
    /// # Errors
    /// As [`Layout::gc`].
    pub fn gc_with(&self, options: &GcOptions, progress: &dyn Progress) -> Result<GcReport> {
        let _lock = self.gc_lock(progress)?;
        self.gc_pass(options, true, None)
    }

    /// The gc lock, exclusive: waits for running writers, saying so.
    fn gc_lock(&self, progress: &dyn Progress) -> Result<lock::Lock> {
        self.ensure_private()?;
        let path = self.lock_path(GC_LOCK);
        lock::acquire_noting(&path, Mode::Exclusive, &|pids| {
            progress.waiting(&format!(
                "gc is waiting for the lock {} held by {}, a writer still at work; \
                 it goes on when the writer is done (Ctrl-C to give up)",
                path.display(),
                lock::describe(pids)
            ));
        })
    }

    /// Finds what nothing reaches, then judges (and with `remove`, deletes)
    /// each candidate by its mtime, on many threads at once: stat and unlink
    /// are I/O, and with `-o discard` every unlink waits for the device.
    /// With `only`, candidates outside it are kept (applying a plan).
    fn gc_pass(
        &self,
        options: &GcOptions,
        remove: bool,
        only: Option<&HashSet<PathBuf>>,
    ) -> Result<GcReport> {
        let index = self.read_index()?;
        let roots = index.entries();
        // The walk reads manifests, the scan lists directories: overlap them.
        let (graph, inventory) = rayon::join(|| Graph::walk(self, roots), || Inventory::scan(self));
        let inventory = inventory?;
        self.refuse_unless_whole(&graph, &inventory)?;
        let described: HashMap<&Digest, u64> =
            graph.edges.iter().map(|e| (&e.digest, e.size)).collect();
        let mut report = GcReport::default();
        report.plan.roots = roots.len();
        let mut candidates: Vec<Candidate<'_>> = Vec::new();
        for (digest, file) in &inventory.blobs {
            match described.get(digest) {
                Some(size) => {
                    report.plan.reachable_blobs += 1;
                    report.plan.reachable_bytes = report
                        .plan
                        .reachable_bytes
                        .checked_add(*size)
                        .ok_or_else(|| Error::Overflow {
                            what: "the sizes index.json's manifests give their blobs".into(),
                        })?;
                }
                None => candidates.push(Candidate {
                    digest: Some(digest),
                    file,
                }),
            }
        }
        candidates.extend(
            inventory
                .temp_files
                .iter()
                .map(|file| Candidate { digest: None, file }),
        );
        if let Some(only) = only {
            candidates.retain(|c| only.contains(&c.file.path));
        }
        let cutoff = SystemTime::now()
            .checked_sub(options.grace)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let outcomes = sweep::run(&candidates, cutoff, remove)?;
        let mut dirs = BTreeSet::new();
        for (c, outcome) in candidates.iter().zip(outcomes) {
            report.record(c, outcome, &mut dirs);
        }
        report
            .plan
            .blobs
            .sort_unstable_by(|a, b| a.digest.cmp(&b.digest));
        for dir in dirs {
            durable::sync_dir(dir)?;
        }
        Ok(report)
    }
}

impl Layout {
    /// Refuses to judge anything unless the walk saw every reachable
    /// document and the listing shows each of them.
    fn refuse_unless_whole(&self, graph: &Graph, inventory: &Inventory) -> Result<()> {
        // What was just read as a reachable document must be among the
        // blobs listed: if not, the listing does not show what the reads
        // see (a directory swapped under us), and nothing may be judged.
        if let Some(d) = graph
            .documents
            .keys()
            .find(|d| !inventory.blobs.contains_key(*d))
        {
            return Err(Error::GcRefused {
                reason: format!(
                    "the reachable document {d} was read, but the listing of {} does not show it; \
                     the layout's directories are not what they seem. Run `epoch-store verify`",
                    self.blobs_dir(d.algorithm()).display()
                ),
            });
        }
        if let Some((desc, e)) = graph.failures.first() {
            return Err(Error::GcRefused {
                reason: format!(
                    "{} of the reachable manifests cannot be read, so what they reference is unknown; first: {}: {e}. \
                     Run `epoch-store verify`, then restore the document or untag the refs that reach it",
                    graph.failures.len(),
                    desc.digest
                ),
            });
        }
        Ok(())
    }
}

impl GcReport {
    /// Counts one candidate's outcome; a removed blob's directory goes into
    /// `dirs`, to be fsynced.
    fn record<'a>(
        &mut self,
        c: &Candidate<'a>,
        outcome: Outcome,
        dirs: &mut BTreeSet<&'a std::path::Path>,
    ) {
        let size = match outcome {
            Outcome::Gone => return,
            Outcome::Young(size) => {
                if c.digest.is_some() {
                    self.plan.young_blobs += 1;
                    self.plan.young_bytes += size;
                }
                return;
            }
            Outcome::Future(size) => {
                if c.digest.is_some() {
                    self.plan.future_blobs += 1;
                    self.plan.future_bytes += size;
                }
                return;
            }
            Outcome::Garbage(size) => size,
            Outcome::Removed(size) => {
                self.removed_bytes += size;
                if c.digest.is_some() {
                    self.removed_blobs += 1;
                    dirs.insert(durable::parent(&c.file.path));
                } else {
                    self.removed_temp_files += 1;
                }
                size
            }
        };
        let garbage = Garbage {
            path: c.file.path.clone(),
            digest: c.digest.cloned(),
            size,
        };
        match c.digest {
            Some(_) => self.plan.blobs.push(garbage),
            None => self.plan.temp_files.push(garbage),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::progress::NoProgress;

    #[test]
    fn applying_a_plan_removes_only_what_is_still_garbage_and_was_planned() -> Result<()> {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::init(dir.path().join("l"))?;
        let now = GcOptions::default().grace(Duration::ZERO);
        let (gone, saved) = {
            let w = layout.writer()?;
            (
                w.put_bytes("x/y", b"garbage")?,
                w.put_bytes("x/y", b"saved later")?,
            )
        };
        let plan = layout.plan_gc(&now)?;
        let planned: Vec<_> = plan.blobs.iter().filter_map(|g| g.digest.clone()).collect();
        assert!(planned.contains(&gone.digest) && planned.contains(&saved.digest));
        // Between plan and apply: one planned blob becomes reachable, and a
        // new unreachable one appears.
        let late = {
            let w = layout.writer()?;
            let m = crate::store::artifact::files_manifest(
                &w,
                std::slice::from_ref(&saved),
                None,
                None,
            )?;
            w.update_index(|i| Ok(i.set_ref(&"keep:1".parse().unwrap(), &m)))?;
            w.put_bytes("x/y", b"garbage after the plan")?
        };
        let report = layout.apply_gc(plan, &now, &NoProgress)?;
        let removed: Vec<_> = report
            .plan
            .blobs
            .iter()
            .filter_map(|g| g.digest.clone())
            .collect();
        assert_eq!(removed, vec![gone.digest.clone()]);
        assert!(!layout.blob_path(&gone.digest).exists());
        assert!(
            layout.blob_path(&saved.digest).exists(),
            "reachable since the plan"
        );
        assert!(layout.blob_path(&late.digest).exists(), "not in the plan");
        Ok(())
    }
}
