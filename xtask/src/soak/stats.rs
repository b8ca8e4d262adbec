//! What the clients saw, and the service's memory: the figures the verdict
//! comes from.

use std::collections::BTreeMap;
use std::time::Duration;

use std::sync::atomic::Ordering;

use super::client::Reply;
use super::{Shared, FAILURES_KEPT, MIN_WINDOW_SAMPLES};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Verdict {
    Ok,
    /// 503 `overloaded`: load shedding, allowed.
    Shed,
    Fail,
}

/// One row of the results: a request kind, the status and the error code.
pub(super) type Key = (String, u16, String);

/// A row's figures.
#[derive(Clone, Copy)]
pub(super) struct Row {
    pub(super) count: u64,
    pub(super) verdict: Verdict,
    pub(super) total: Duration,
    pub(super) slowest: Duration,
}

#[derive(Default)]
pub(super) struct Tally {
    pub(super) rows: BTreeMap<Key, Row>,
    pub(super) requests: u64,
    pub(super) ok: u64,
    pub(super) shed: u64,
    pub(super) failed: u64,
    pub(super) failures: Vec<String>,
}

impl Tally {
    pub(super) fn record(
        &mut self,
        shared: &Shared,
        label: &str,
        reply: &Reply,
        verdict: Verdict,
        why: impl FnOnce() -> String,
    ) {
        let row = self
            .rows
            .entry((label.to_owned(), reply.status, reply.code.clone()))
            .or_insert(Row {
                count: 0,
                verdict,
                total: Duration::ZERO,
                slowest: Duration::ZERO,
            });
        row.count += 1;
        row.verdict = row.verdict.max(verdict);
        row.total += reply.took;
        row.slowest = row.slowest.max(reply.took);
        self.requests += 1;
        shared.requests.fetch_add(1, Ordering::Relaxed);
        match verdict {
            Verdict::Ok => self.ok += 1,
            Verdict::Shed => self.shed += 1,
            Verdict::Fail => {
                shared.failures.fetch_add(1, Ordering::Relaxed);
                self.fail(format!("{label}: {}", why()));
            }
        }
    }

    pub(super) fn fail(&mut self, description: String) {
        self.failed += 1;
        if self.failures.len() < FAILURES_KEPT {
            self.failures.push(description);
        }
    }

    pub(super) fn merge(&mut self, other: Tally) {
        for (key, theirs) in other.rows {
            let row = self.rows.entry(key).or_insert(Row {
                count: 0,
                verdict: theirs.verdict,
                total: Duration::ZERO,
                slowest: Duration::ZERO,
            });
            row.count += theirs.count;
            row.verdict = row.verdict.max(theirs.verdict);
            row.total += theirs.total;
            row.slowest = row.slowest.max(theirs.slowest);
        }
        self.requests += other.requests;
        self.ok += other.ok;
        self.shed += other.shed;
        self.failed += other.failed;
        self.failures.extend(other.failures);
    }
}

/// The server's resident memory, in KiB.
///
/// Hostile calls (the memory bomb, the output flood) raise it for a moment,
/// so a single sample in the middle or at the end can land on a spike or
/// between two. A leak raises the floor: the middle and the end are the
/// lowest sample of the window around each (45-55% and 90-100% of the run),
/// taken under the same traffic. Samples come every 1/200 of the run (at
/// least 100 ms apart), so each window holds about 20, whatever its length.
#[derive(Default)]
pub(super) struct Memory {
    /// (fraction of the run, RSS), from the end of the warm-up on.
    pub(super) samples: Vec<(f64, u64)>,
    /// Once the clients have stopped.
    pub(super) after: Option<u64>,
}

impl Memory {
    pub(super) fn start(&self) -> Option<u64> {
        self.samples.first().map(|&(_, rss)| rss)
    }

    /// The lowest sample in `from..=to`; `None` with fewer than
    /// [`MIN_WINDOW_SAMPLES`] there.
    pub(super) fn floor(&self, from: f64, to: f64) -> Option<u64> {
        let window: Vec<u64> = self
            .samples
            .iter()
            .filter(|(at, _)| (from..=to).contains(at))
            .map(|&(_, rss)| rss)
            .collect();
        if window.len() < MIN_WINDOW_SAMPLES {
            return None;
        }
        window.into_iter().min()
    }

    pub(super) fn middle(&self) -> Option<u64> {
        self.floor(0.45, 0.55)
    }

    pub(super) fn end(&self) -> Option<u64> {
        self.floor(0.9, 1.0)
    }

    pub(super) fn min(&self) -> Option<u64> {
        self.samples.iter().map(|&(_, rss)| rss).chain(self.after).min()
    }

    pub(super) fn max(&self) -> Option<u64> {
        self.samples.iter().map(|&(_, rss)| rss).chain(self.after).max()
    }

    pub(super) fn growth_percent(&self) -> Option<f64> {
        let (middle, end) = (self.middle()?, self.end()?);
        Some((end as f64 - middle as f64) / middle.max(1) as f64 * 100.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growth_is_between_the_floors_of_the_middle_and_the_end() {
        let mut samples = vec![(0.0, 100), (0.7, 500)];
        samples.extend([0.46, 0.48, 0.5, 0.52, 0.54].into_iter().zip([300, 210, 200, 400, 250]));
        samples.extend(
            [0.91, 0.93, 0.95, 0.97, 0.99]
                .into_iter()
                .zip([250, 220, 230, 300, 240]),
        );
        let memory = Memory {
            samples,
            after: Some(90),
        };
        assert_eq!(
            (memory.start(), memory.middle(), memory.end()),
            (Some(100), Some(200), Some(220))
        );
        assert_eq!((memory.min(), memory.max()), (Some(90), Some(500)));
        assert_eq!(memory.growth_percent(), Some(10.0));
        assert_eq!(Memory::default().growth_percent(), None);
    }

    #[test]
    fn a_window_with_too_few_samples_gives_no_growth() {
        let mut samples: Vec<(f64, u64)> = [0.46, 0.48, 0.5, 0.52, 0.54].into_iter().zip([200; 5]).collect();
        samples.extend([0.92, 0.95, 0.98, 0.99].into_iter().zip([900; 4]));
        let memory = Memory { samples, after: None };
        assert_eq!((memory.middle(), memory.end()), (Some(200), None));
        assert_eq!(memory.growth_percent(), None);
    }
}
