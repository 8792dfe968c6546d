//! The one work queue: jobs handed to a fixed set of workers, each taking
//! the next item when it is done with one, results in input order.
//!
//! A plain `par_iter` splits a list in halves: its first thread works
//! through the front half one item after another while the others steal
//! the small ones, so three 512 MiB blobs of a copy once ran on one core. A
//! shared queue, largest items first, starts the big ones at once on
//! different threads.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};

/// Who runs the jobs.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Workers {
    /// Rayon's current pool, one worker per core: for jobs that use the CPU
    /// (hashing, compressing).
    Cores,
    /// This many threads of their own: for jobs that mostly wait on the
    /// disk (an fsync per blob, a stat and an unlink per gc candidate), so
    /// that more are in flight than there are cores.
    Threads(usize),
}

/// Runs `job` on every item, the largest (by `size`) first, and returns the
/// results in input order. Every job runs, whatever the others return.
pub(crate) fn by_size<T: Sync, R: Send>(
    items: &[T],
    workers: Workers,
    size: impl Fn(&T) -> u64,
    job: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(size(&items[i])));
    drive(items, &order, workers, &job, &|_| false)
        .into_iter()
        .map(|r| r.expect("every job runs when none stops the queue"))
        .collect()
}

/// Runs `job` on the items in input order until one fails: then no more
/// jobs are handed out, the running ones finish, and the error of the
/// earliest failed item is returned.
pub(crate) fn until_error<T: Sync, R: Send, E: Send>(
    items: &[T],
    workers: Workers,
    job: impl Fn(&T) -> Result<R, E> + Sync,
) -> Result<Vec<R>, E> {
    let order: Vec<usize> = (0..items.len()).collect();
    let results = drive(items, &order, workers, &job, &Result::is_err);
    let mut out = Vec::with_capacity(items.len());
    let mut stopped = false;
    for r in results {
        match r {
            Some(Ok(v)) if !stopped => out.push(v),
            Some(Err(e)) => return Err(e),
            _ => stopped = true,
        }
    }
    assert!(!stopped, "the queue stops only after an error");
    Ok(out)
}

/// The queue: workers take `order`'s items one at a time; once `stop` holds
/// for a result, no more are handed out. `None` for items never started.
fn drive<T: Sync, R: Send>(
    items: &[T],
    order: &[usize],
    workers: Workers,
    job: &(dyn Fn(&T) -> R + Sync),
    stop: &(dyn Fn(&R) -> bool + Sync),
) -> Vec<Option<R>> {
    let next = AtomicUsize::new(0);
    let done: Vec<Mutex<Option<R>>> = items.iter().map(|_| Mutex::new(None)).collect();
    let work = || {
        loop {
            let k = next.fetch_add(1, Ordering::Relaxed);
            let Some(&i) = order.get(k) else { break };
            let r = job(&items[i]);
            let halt = stop(&r);
            *done[i].lock().unwrap_or_else(|p| p.into_inner()) = Some(r);
            if halt {
                next.store(order.len(), Ordering::Relaxed);
                break;
            }
        }
    };
    match workers {
        Workers::Cores => {
            let n = rayon::current_num_threads().min(items.len());
            rayon::scope(|s| (0..n).for_each(|_| s.spawn(|_| work())));
        }
        Workers::Threads(n) => std::thread::scope(|s| {
            for _ in 0..n.min(items.len()) {
                s.spawn(work);
            }
        }),
    }
    done.into_iter()
        .map(|m| m.into_inner().unwrap_or_else(|p| p.into_inner()))
        .collect()
}

/// A pipeline: jobs handed to the cores one by one while the caller goes
/// on producing the next, their results taken back in the order they were
/// handed in, with at most `limit` in flight (memory stays bounded). For a
/// stream cut into blocks that are worked on in parallel and written in
/// order (gzip).
pub(crate) struct InOrder<R: Send + 'static> {
    tx: Sender<(u64, R)>,
    rx: Receiver<(u64, R)>,
    submitted: u64,
    taken: u64,
    ready: BTreeMap<u64, R>,
    limit: u64,
}

impl<R: Send + 'static> InOrder<R> {
    /// A pipeline with at most `limit` (at least 1) jobs in flight.
    pub(crate) fn new(limit: usize) -> InOrder<R> {
        let (tx, rx) = channel();
        InOrder {
            tx,
            rx,
            submitted: 0,
            taken: 0,
            ready: BTreeMap::new(),
            limit: limit.max(1) as u64,
        }
    }

    /// Hands `job` to the cores, after waiting, while `limit` jobs are in
    /// flight, for the oldest; returns the results now due, in order.
    pub(crate) fn submit(&mut self, job: impl FnOnce() -> R + Send + 'static) -> Vec<R> {
        let mut due = Vec::new();
        while self.submitted - self.taken >= self.limit {
            due.extend(self.wait_next());
        }
        let seq = self.submitted;
        self.submitted += 1;
        let tx = self.tx.clone();
        rayon::spawn(move || {
            // The receiver outlives every job unless the caller gave up.
            let _ = tx.send((seq, job()));
        });
        due.extend(self.take_ready());
        due
    }

    /// Waits for every job handed in; returns the results not yet taken,
    /// in order.
    pub(crate) fn finish(&mut self) -> Vec<R> {
        let mut due = Vec::new();
        while self.taken < self.submitted {
            due.extend(self.wait_next());
        }
        due
    }

    /// Blocks until the oldest job not taken is done; returns what is due.
    fn wait_next(&mut self) -> Vec<R> {
        while !self.ready.contains_key(&self.taken) {
            let (seq, r) = self.rx.recv().expect("a job of ours holds a sender");
            self.ready.insert(seq, r);
        }
        self.take_ready()
    }

    /// The results due, in order, of the jobs done so far.
    fn take_ready(&mut self) -> Vec<R> {
        while let Ok((seq, r)) = self.rx.try_recv() {
            self.ready.insert(seq, r);
        }
        let mut due = Vec::new();
        while let Some(r) = self.ready.remove(&self.taken) {
            due.push(r);
            self.taken += 1;
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_come_back_in_input_order_whoever_runs_them() {
        let items: Vec<u64> = (0..100).collect();
        for workers in [Workers::Cores, Workers::Threads(7)] {
            let out = by_size(&items, workers, |&n| n % 13, |&n| n * 2);
            assert_eq!(out, items.iter().map(|n| n * 2).collect::<Vec<_>>());
        }
    }

    #[test]
    fn the_largest_items_start_first() {
        let items: Vec<u64> = vec![1, 50, 3, 40, 2];
        let started = Mutex::new(Vec::new());
        by_size(
            &items,
            Workers::Threads(1),
            |&n| n,
            |&n| {
                started.lock().unwrap().push(n);
            },
        );
        assert_eq!(started.into_inner().unwrap(), vec![50, 40, 3, 2, 1]);
    }

    #[test]
    fn an_error_stops_the_queue_and_the_earliest_error_is_returned() {
        let items: Vec<u32> = (0..1000).collect();
        let ran = AtomicUsize::new(0);
        let r = until_error(&items, Workers::Threads(1), |&n| {
            ran.fetch_add(1, Ordering::Relaxed);
            if n == 10 { Err(n) } else { Ok(n) }
        });
        assert_eq!(r, Err(10));
        assert_eq!(
            ran.load(Ordering::Relaxed),
            11,
            "nothing after the failure runs"
        );
        let ok = until_error(&items, Workers::Cores, |&n| Ok::<_, ()>(n + 1));
        assert_eq!(ok.unwrap(), items.iter().map(|n| n + 1).collect::<Vec<_>>());
    }

    #[test]
    fn a_pipeline_gives_results_in_order_with_a_bounded_number_in_flight() {
        let running = std::sync::Arc::new(AtomicUsize::new(0));
        let most = std::sync::Arc::new(AtomicUsize::new(0));
        let mut p = InOrder::new(3);
        let mut out = Vec::new();
        for i in 0..50u64 {
            let (running, most) = (running.clone(), most.clone());
            out.extend(p.submit(move || {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                std::thread::sleep(std::time::Duration::from_micros((50 - i) * 20));
                running.fetch_sub(1, Ordering::SeqCst);
                i * 10
            }));
        }
        out.extend(p.finish());
        assert_eq!(out, (0..50).map(|i| i * 10).collect::<Vec<_>>());
        assert!(most.load(Ordering::SeqCst) <= 3);
    }
}
