//! Where a run's time went: the wall-time intervals during which the main path awaited the
//! backend, a declared wait or a service, and the process's CPU time over the run.
//!
//! Waits overlap (a `parallel` group's children, bring-up's readiness waits side by side, an
//! upgrade's health wait beside a fault's `for`), so adding their durations up counts the same
//! second several times. Each wait is therefore an interval on the run's clock, and a category's
//! figure is the length of the union of its intervals: the wall time during which at least one
//! such wait was in progress. The harness's own share is the run's time outside the union of all
//! of them. The plain sums are kept too, for journals' old fields.
//!
//! Memory stays bounded however long the run: [`IntervalUnion`] keeps only the intervals that an
//! interval still in progress could overlap (at most one closed interval, plus the starts of the
//! waits in progress), and folds the rest into a length.
//!
//! This module reads no clock of its own beyond `clock::instant_now` and never touches the
//! journal's events; it only answers what the engine records at the end of a run.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use crate::clock;
use crate::journal::Journal;

/// What the main path is waiting on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// A backend (Docker) call: image checks and builds, create, start, actions, exec, removal.
    Backend,
    /// A declared wait: a `wait` step, a `for` duration, a `parallel` child's `delay`.
    Declared,
    /// A service: readiness and health waits, probes, calls, version checks, traffic draining.
    Service,
}

/// The union of intervals `[start, end)` on one clock (µs), fed as waits begin and end.
///
/// Every `open`/`close` reads the clock at the moment of the call, so starts are never before an
/// end already recorded, and ends come in order (a wait that started first may end last). Under
/// that rule, a closed interval that starts at or after the start of a wait still in progress lies
/// inside that wait's eventual interval and adds nothing; and a closed interval that ends before
/// every wait in progress started can be overlapped by nothing later, so only its length is kept.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct IntervalUnion {
    /// Total length of the intervals already folded away.
    settled_us: u64,
    /// Closed intervals not yet folded: sorted, disjoint, not adjacent.
    closed: Vec<(u64, u64)>,
    /// Starts of the intervals in progress, with how many began at each.
    open: BTreeMap<u64, u32>,
}

impl IntervalUnion {
    /// An interval begins at `start_us`.
    pub fn open(&mut self, start_us: u64) {
        *self.open.entry(start_us).or_default() += 1;
    }

    /// The interval that began at `start_us` (by [`open`](Self::open)) ends at `end_us` (now).
    pub fn close(&mut self, start_us: u64, end_us: u64) {
        if let Some(count) = self.open.get_mut(&start_us) {
            *count -= 1;
            if *count == 0 {
                self.open.remove(&start_us);
            }
        }
        let end_us = end_us.max(start_us);
        let covered_later = self.open.keys().next().is_some_and(|&first| first <= start_us);
        if !covered_later {
            self.insert(start_us, end_us);
        }
        let horizon = self.open.keys().next().copied().unwrap_or(end_us);
        self.settle(horizon);
    }

    /// The union's length at `now_us`, counting the intervals in progress as ending then.
    pub fn covered(&self, now_us: u64) -> u64 {
        let mut intervals = self.closed.clone();
        if let Some(&first) = self.open.keys().next() {
            intervals.push((first, now_us.max(first)));
            intervals.sort_unstable();
        }
        let mut total = self.settled_us;
        let mut current: Option<(u64, u64)> = None;
        for (start, end) in intervals {
            current = match current {
                Some((s, e)) if start <= e => Some((s, e.max(end))),
                Some((s, e)) => {
                    total += e - s;
                    Some((start, end))
                }
                None => Some((start, end)),
            };
        }
        total + current.map_or(0, |(s, e)| e - s)
    }

    /// How many intervals are kept (closed, not folded, and in progress): what the memory bound
    /// is about.
    #[cfg(test)]
    fn kept(&self) -> usize {
        self.closed.len() + self.open.len()
    }

    /// Add `[start, end)` to the closed intervals, merging what it overlaps or touches.
    fn insert(&mut self, start: u64, end: u64) {
        let (mut start, mut end) = (start, end);
        // The first interval that is not wholly before the new one (touching counts as overlap).
        let from = self.closed.partition_point(|&(_, e)| e < start);
        let mut to = from;
        while to < self.closed.len() && self.closed[to].0 <= end {
            start = start.min(self.closed[to].0);
            end = end.max(self.closed[to].1);
            to += 1;
        }
        self.closed.splice(from..to, [(start, end)]);
    }

    /// Fold the closed intervals that end at or before `horizon` into their length.
    fn settle(&mut self, horizon: u64) {
        let done = self.closed.partition_point(|&(_, e)| e <= horizon);
        self.settled_us += self.closed.drain(..done).map(|(s, e)| e - s).sum::<u64>();
    }
}

/// Where a run's time went, as [`Accounting::summary`] reads it (µs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Per category, the durations of its waits added up (overlaps counted each time).
    pub sums: PerWait,
    /// Per category, the wall time during which at least one of its waits was in progress.
    pub unions: PerWait,
    /// Wall time during which at least one wait of any category was in progress.
    pub waiting_us: u64,
    /// The process's CPU time (user + system) since the accounting started; `None` when the
    /// system would not say.
    pub cpu_us: Option<u64>,
}

/// One figure per [`Wait`] category (µs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PerWait {
    /// Backend calls.
    pub backend_us: u64,
    /// Declared waits.
    pub declared_us: u64,
    /// Services.
    pub service_us: u64,
}

/// A run's time accounting: waits of the main path as intervals per category (background
/// monitors are not counted), and the process's CPU time.
#[derive(Debug)]
pub struct Accounting {
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// Offset 0 of the intervals: the run's start (the journal's origin).
    origin: Instant,
    /// Which run on this accounting (a kept stack's runs share one): a wait begun in an earlier
    /// run is not counted in a later one.
    generation: u64,
    /// The process's CPU time when the accounting started.
    cpu_start: Option<Duration>,
    backend: Category,
    declared: Category,
    service: Category,
    any: IntervalUnion,
}

#[derive(Debug, Default)]
struct Category {
    union: IntervalUnion,
    sum_us: u64,
}

impl State {
    fn new(origin: Instant, generation: u64) -> Self {
        State {
            origin,
            generation,
            cpu_start: process_cpu_time(),
            backend: Category::default(),
            declared: Category::default(),
            service: Category::default(),
            any: IntervalUnion::default(),
        }
    }

    fn category(&mut self, wait: Wait) -> &mut Category {
        match wait {
            Wait::Backend => &mut self.backend,
            Wait::Declared => &mut self.declared,
            Wait::Service => &mut self.service,
        }
    }

    fn offset_us(&self, instant: Instant) -> u64 {
        u64::try_from(instant.saturating_duration_since(self.origin).as_micros())
            .unwrap_or(u64::MAX)
    }
}

impl Accounting {
    /// Accounting on the run clock of `journal`: offset 0 is the journal's origin.
    pub fn for_journal(journal: &Journal) -> Self {
        Accounting { state: Mutex::new(State::new(journal_origin(journal), 0)) }
    }

    /// Start from zero on the run clock of `journal` (a new run on a kept stack, whose journal
    /// starts a new segment). Waits still in progress are forgotten.
    pub fn restart(&self, journal: &Journal) {
        let mut state = self.lock();
        *state = State::new(journal_origin(journal), state.generation + 1);
    }

    /// A wait of kind `wait` begins now; it ends when the guard is dropped (also when the future
    /// holding it is cancelled: the wait ended then).
    pub fn begin(&self, wait: Wait) -> WaitGuard<'_> {
        let mut state = self.lock();
        let start_us = state.offset_us(clock::instant_now());
        state.category(wait).union.open(start_us);
        state.any.open(start_us);
        WaitGuard { accounting: self, wait, start_us, generation: state.generation }
    }

    /// Await `future` as a wait of kind `wait`.
    pub async fn time<F: Future>(&self, wait: Wait, future: F) -> F::Output {
        let _waiting = self.begin(wait);
        future.await
    }

    /// Where the time went up to now (waits in progress count up to now).
    pub fn summary(&self) -> Summary {
        let state = self.lock();
        let now_us = state.offset_us(clock::instant_now());
        let per = |f: &dyn Fn(&Category) -> u64| PerWait {
            backend_us: f(&state.backend),
            declared_us: f(&state.declared),
            service_us: f(&state.service),
        };
        let cpu_us = match (state.cpu_start, process_cpu_time()) {
            (Some(start), Some(end)) => {
                Some(u64::try_from(end.saturating_sub(start).as_micros()).unwrap_or(u64::MAX))
            }
            _ => None,
        };
        Summary {
            sums: per(&|c| c.sum_us),
            unions: per(&|c| c.union.covered(now_us)),
            waiting_us: state.any.covered(now_us),
            cpu_us,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A wait in progress; dropping it ends the wait's interval.
#[must_use = "the wait ends when the guard is dropped"]
#[derive(Debug)]
pub struct WaitGuard<'a> {
    accounting: &'a Accounting,
    wait: Wait,
    start_us: u64,
    generation: u64,
}

impl Drop for WaitGuard<'_> {
    fn drop(&mut self) {
        let mut state = self.accounting.lock();
        if state.generation != self.generation {
            return;
        }
        let end_us = state.offset_us(clock::instant_now());
        let category = state.category(self.wait);
        category.union.close(self.start_us, end_us);
        category.sum_us += end_us.saturating_sub(self.start_us);
        state.any.close(self.start_us, end_us);
    }
}

/// The tokio instant of the journal's offset 0.
fn journal_origin(journal: &Journal) -> Instant {
    let now = clock::instant_now();
    now.checked_sub(journal.offset()).unwrap_or(now)
}

/// The whole process's CPU time (user + system), from `getrusage(RUSAGE_SELF)`.
///
/// Process-wide on purpose: the run's work hops between tokio's worker threads (and blocking
/// threads), so `RUSAGE_THREAD` on the thread that happens to read it would miss most of it. The
/// price: runs sharing the process at the same time (tests) are counted together, and so is what
/// the process does between runs.
fn process_cpu_time() -> Option<Duration> {
    // SAFETY: `getrusage` only writes the `rusage` it is given; a zeroed one is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a valid, writable `rusage` for the duration of the call.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return None;
    }
    let time = |t: libc::timeval| {
        Duration::from_secs(u64::try_from(t.tv_sec).ok()?)
            .checked_add(Duration::from_micros(u64::try_from(t.tv_usec).ok()?))
    };
    time(usage.ru_utime)?.checked_add(time(usage.ru_stime)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(start, end)` waits in the order they happen; returns the union's length at the end.
    fn union_of(waits: &[(u64, u64)]) -> (u64, IntervalUnion) {
        // Replay as a clock would: every start and end in time order, ends before starts at the
        // same instant.
        let mut moments: Vec<(u64, bool, usize)> = Vec::new();
        for (i, &(start, end)) in waits.iter().enumerate() {
            moments.push((start, true, i));
            moments.push((end, false, i));
        }
        moments.sort_by_key(|&(at, is_start, i)| (at, is_start, i));
        let mut union = IntervalUnion::default();
        let mut last = 0;
        for (at, is_start, i) in moments {
            if is_start {
                union.open(at);
            } else {
                union.close(waits[i].0, at);
            }
            last = at;
        }
        (union.covered(last), union)
    }

    #[test]
    fn disjoint_intervals_add_up() {
        assert_eq!(union_of(&[(0, 10), (20, 25), (40, 100)]).0, 75);
    }

    #[test]
    fn overlapping_intervals_count_once() {
        assert_eq!(union_of(&[(0, 10), (5, 15)]).0, 15);
        assert_eq!(union_of(&[(0, 10), (5, 15), (12, 30)]).0, 30);
    }

    #[test]
    fn a_nested_interval_adds_nothing() {
        assert_eq!(union_of(&[(0, 100), (10, 20), (30, 40), (50, 60)]).0, 100);
    }

    #[test]
    fn adjacent_intervals_join() {
        assert_eq!(union_of(&[(0, 10), (10, 20), (20, 35)]).0, 35);
    }

    #[test]
    fn an_interval_that_started_first_may_end_last() {
        // B starts after A and ends first; C starts before A ends and ends last.
        let mut union = IntervalUnion::default();
        union.open(0); // A
        union.open(10); // B
        union.close(10, 20);
        union.open(30); // C
        union.close(0, 40);
        assert_eq!(union.covered(40), 40);
        union.close(30, 55);
        assert_eq!(union.covered(55), 55);
        // Then a gap, and one more.
        union.open(70);
        union.close(70, 80);
        assert_eq!(union.covered(100), 65);
    }

    #[test]
    fn waits_in_progress_count_up_to_now() {
        let mut union = IntervalUnion::default();
        union.open(0);
        union.close(0, 10);
        union.open(20);
        assert_eq!(union.covered(20), 10);
        assert_eq!(union.covered(50), 40);
        union.open(30);
        union.close(30, 35);
        assert_eq!(union.covered(50), 40);
    }

    #[test]
    fn two_waits_may_begin_at_the_same_instant() {
        let mut union = IntervalUnion::default();
        union.open(5);
        union.open(5);
        union.close(5, 10);
        assert_eq!(union.covered(10), 5);
        union.close(5, 30);
        assert_eq!(union.covered(30), 25);
        assert_eq!(union.kept(), 0);
    }

    #[test]
    fn what_nothing_can_overlap_any_more_is_folded() {
        // Thousands of short polls, some of them beside one long wait: the kept state stays
        // tiny, and the length is exact.
        let mut union = IntervalUnion::default();
        let mut expected = 0;
        let mut most_kept = 0;
        for i in 0..10_000u64 {
            let start = i * 10;
            if i == 5_000 {
                union.open(start); // a long wait over the next 100 polls
            }
            union.open(start);
            most_kept = most_kept.max(union.kept());
            union.close(start, start + 4);
            most_kept = most_kept.max(union.kept());
            if i == 5_100 {
                union.close(50_000, start + 4);
                expected += 1_004; // 50_000..51_004, the polls inside it counted once
            } else if !(5_000..5_100).contains(&i) {
                expected += 4;
            }
        }
        assert_eq!(union.covered(100_000), expected);
        assert!(most_kept <= 3, "{most_kept}");
        assert_eq!(union.kept(), 0);
    }

    #[test]
    fn an_end_before_its_start_counts_nothing() {
        let mut union = IntervalUnion::default();
        union.open(10);
        union.close(10, 5);
        assert_eq!(union.covered(10), 0);
    }

    #[test]
    fn the_replay_helper_matches_a_brute_force_union() {
        // Pseudo-random waits (a fixed LCG) against a per-microsecond count.
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = |bound: u64| {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            (seed >> 33) % bound
        };
        for _ in 0..200 {
            let waits: Vec<(u64, u64)> = (0..8)
                .map(|_| {
                    let start = next(200);
                    (start, start + 1 + next(50))
                })
                .collect();
            let mut covered = vec![false; 260];
            for &(s, e) in &waits {
                covered[s as usize..e as usize].iter_mut().for_each(|c| *c = true);
            }
            let brute = covered.iter().filter(|&&c| c).count() as u64;
            assert_eq!(union_of(&waits).0, brute, "{waits:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn accounting_keeps_sums_unions_and_the_union_of_all() {
        let journal = Journal::in_memory(std::sync::Arc::new(crate::clock::SystemClock::start()));
        let accounting = Accounting::for_journal(&journal);
        let step = Duration::from_millis(10);
        let a = accounting.begin(Wait::Declared);
        let b = accounting.begin(Wait::Declared);
        tokio::time::advance(step).await;
        let docker = accounting.begin(Wait::Backend);
        tokio::time::advance(step).await;
        drop(docker);
        drop(a);
        tokio::time::advance(step).await;
        drop(b);
        // Nothing in progress: the harness's own time.
        tokio::time::advance(step).await;
        let service = accounting.begin(Wait::Service);
        tokio::time::advance(step).await;
        drop(service);
        let summary = accounting.summary();
        assert_eq!(
            summary.sums,
            PerWait { backend_us: 10_000, declared_us: 50_000, service_us: 10_000 }
        );
        assert_eq!(
            summary.unions,
            PerWait { backend_us: 10_000, declared_us: 30_000, service_us: 10_000 }
        );
        assert_eq!(summary.waiting_us, 40_000);
        assert_eq!(journal.offset().as_micros(), 50_000);
    }

    #[tokio::test(start_paused = true)]
    async fn a_restart_forgets_the_earlier_runs_waits() {
        let clock = std::sync::Arc::new(crate::clock::SegmentClock::start());
        let journal = Journal::in_memory(clock);
        let accounting = Accounting::for_journal(&journal);
        let earlier = accounting.begin(Wait::Service);
        tokio::time::advance(Duration::from_millis(10)).await;
        journal.begin_segment(None, 0).unwrap();
        accounting.restart(&journal);
        tokio::time::advance(Duration::from_millis(5)).await;
        drop(earlier);
        let docker = accounting.begin(Wait::Backend);
        tokio::time::advance(Duration::from_millis(5)).await;
        drop(docker);
        let summary = accounting.summary();
        assert_eq!(summary.sums, PerWait { backend_us: 5_000, ..PerWait::default() });
        assert_eq!(summary.waiting_us, 5_000);
        assert_eq!(journal.offset().as_micros(), 10_000);
    }

    #[test]
    fn the_process_cpu_time_is_readable_and_grows() {
        let before = process_cpu_time().expect("getrusage answers on Linux");
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
        }
        let after = process_cpu_time().unwrap();
        assert!(after > before, "{before:?} → {after:?} ({x})");
    }
}
