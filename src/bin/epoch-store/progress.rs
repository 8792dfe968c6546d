//! Progress bars on stderr, shown only when stderr is a terminal.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressFinish, ProgressStyle};

/// An indicatif bar behind the library's [`epoch_store::Progress`].
pub struct Bar {
    bar: ProgressBar,
}

impl Bar {
    /// A bar that draws on stderr if it is a terminal and `quiet` is off.
    pub fn new(quiet: bool) -> Bar {
        let target = if quiet {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        };
        // A bar that was never begun (gc that only waited) leaves nothing.
        let bar = ProgressBar::with_draw_target(None, target).with_finish(ProgressFinish::AndClear);
        Bar { bar }
    }

    /// A bar with a total: position, rate and ETA, and the phase's status.
    fn bounded() -> ProgressStyle {
        ProgressStyle::with_template(
            "{msg:>10} [{bar:30}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} eta {eta} {prefix}",
        )
        .expect("static template")
        .progress_chars("=> ")
    }

    /// Without a total (a stream on stdin): bytes so far and rate.
    fn unbounded() -> ProgressStyle {
        ProgressStyle::with_template("{msg:>10} {spinner} {binary_bytes} {binary_bytes_per_sec}")
            .expect("static template")
    }
}

impl epoch_store::Progress for Bar {
    /// A total of 0 means unknown (a stream): the bar shows bytes and rate.
    fn begin(&self, phase: &str, total: u64) {
        self.bar.set_style(if total == 0 {
            Bar::unbounded()
        } else {
            Bar::bounded()
        });
        self.bar.set_message(phase.to_string());
        self.bar.set_prefix("");
        self.bar.set_length(total);
        self.bar.set_position(0);
    }

    fn advance(&self, bytes: u64) {
        self.bar.inc(bytes);
    }

    fn status(&self, text: &str) {
        self.bar.set_prefix(text.to_string());
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }

    /// Said on the terminal only (where the bar would be drawn): a script
    /// does not need to be told that a lock is busy.
    fn waiting(&self, what: &str) {
        if !self.bar.is_hidden() {
            crate::output::warn(format_args!("epoch-store: {what}"));
        }
    }
}
