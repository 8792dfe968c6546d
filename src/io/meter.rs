//! Bytes on the wire, counted and held to a rate: one [`Meter`] is shared
//! by every connection of a transfer, so `--limit-rate` caps the sum of
//! them and the progress bar shows the sum.
//!
//! The rate is kept with a virtual clock: each read books its bytes'
//! share of time after the previous booking (never earlier than a short
//! burst before now) and sleeps until its booking begins. Whatever the
//! number of threads, the bytes that pass in any window are at most the
//! rate times the window plus one burst.

use std::io::{self, Read};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::progress::{NoProgress, Progress};

/// What may pass at once above the rate: this long's worth of bytes.
const BURST: Duration = Duration::from_millis(100);

/// Counts the bytes of a transfer for its progress, and holds them to a
/// rate when one is set.
pub struct Meter {
    rate: Option<u64>,
    /// When the bytes booked so far have had their time.
    booked: Mutex<Option<Instant>>,
    progress: Arc<dyn Progress + Send>,
}

impl std::fmt::Debug for Meter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Meter").field("rate", &self.rate).finish()
    }
}

impl Default for Meter {
    fn default() -> Meter {
        Meter::new(None, Arc::new(NoProgress))
    }
}

impl Meter {
    /// A meter reporting to `progress`, holding the bytes to `rate` bytes
    /// a second when given (0 counts as none).
    pub fn new(rate: Option<u64>, progress: Arc<dyn Progress + Send>) -> Meter {
        Meter {
            rate: rate.filter(|r| *r > 0),
            booked: Mutex::new(None),
            progress,
        }
    }

    /// The progress reported to.
    pub fn progress(&self) -> &dyn Progress {
        &*self.progress
    }

    /// `bytes` have moved: reported, then (with a rate) waits until they
    /// are within it.
    pub fn moved(&self, bytes: u64) {
        self.progress.advance(bytes);
        if let Some(wait) = self.book(bytes, Instant::now()) {
            std::thread::sleep(wait);
        }
    }

    /// Books `bytes` at `now`: how long to wait before they may pass.
    fn book(&self, bytes: u64, now: Instant) -> Option<Duration> {
        let rate = self.rate?;
        let mut booked = self.booked.lock().unwrap_or_else(|p| p.into_inner());
        let floor = now.checked_sub(BURST).unwrap_or(now);
        let start = booked.filter(|b| *b > floor).unwrap_or(floor);
        let end = start + Duration::from_secs_f64(bytes as f64 / rate as f64);
        *booked = Some(end);
        let wait = end.saturating_duration_since(now);
        (!wait.is_zero()).then_some(wait)
    }

    /// `reader`, with every byte read from it [`Meter::moved`].
    pub fn reader<R: Read>(self: &Arc<Meter>, reader: R) -> Metered<R> {
        Metered {
            inner: reader,
            meter: Arc::clone(self),
        }
    }
}

/// A reader whose bytes are counted by a [`Meter`].
#[derive(Debug)]
pub struct Metered<R> {
    inner: R,
    meter: Arc<Meter>,
}

impl<R: Read> Read for Metered<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.meter.moved(n as u64);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    #[derive(Default)]
    struct Count(AtomicU64);
    impl Progress for Count {
        fn advance(&self, bytes: u64) {
            self.0.fetch_add(bytes, Ordering::Relaxed);
        }
    }

    #[test]
    fn bookings_follow_the_rate_after_one_burst() {
        let m = Meter::new(Some(1000), Arc::new(NoProgress));
        let t0 = Instant::now();
        // The first burst's worth passes at once.
        assert_eq!(m.book(100, t0), None);
        // Then each 500 bytes takes half a second more, whoever books them.
        assert_eq!(m.book(500, t0), Some(Duration::from_millis(500)));
        assert_eq!(m.book(500, t0), Some(Duration::from_millis(1000)));
        // Long idle: the clock does not bank unused time beyond the burst.
        let later = t0 + Duration::from_secs(60);
        assert_eq!(m.book(100, later), None);
        assert_eq!(m.book(1000, later), Some(Duration::from_millis(1000)));
        assert_eq!(
            Meter::new(None, Arc::new(NoProgress)).book(1 << 30, t0),
            None
        );
        assert_eq!(
            Meter::new(Some(0), Arc::new(NoProgress)).book(1 << 30, t0),
            None
        );
    }

    #[test]
    fn a_metered_reader_counts_and_is_held_to_the_rate() {
        let count = Arc::new(Count::default());
        let meter = Arc::new(Meter::new(Some(200_000), count.clone()));
        let t0 = Instant::now();
        let mut out = Vec::new();
        meter
            .reader(&[7u8; 100_000][..])
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out.len(), 100_000);
        assert_eq!(count.0.load(Ordering::Relaxed), 100_000);
        // 100 kB at 200 kB/s less the 100 ms burst: at least 0.4 s.
        assert!(
            t0.elapsed() >= Duration::from_millis(390),
            "{:?}",
            t0.elapsed()
        );
    }
}
