//! Concrete fault schedules and the proptest strategy that draws them from a [`Space`].
//!
//! A schedule is a list of faults, each a (kind, target) pair of the space, a start in the window
//! and a duration in its `for` range, both whole multiples of the space's resolution. Every part
//! is an integer that proptest shrinks towards zero, and zero is the simplest value: fewer faults
//! (the list shrinks first), an earlier start, a shorter duration, and the first kind and target
//! written in the space.

use std::collections::BTreeSet;
use std::time::Duration;

use proptest::prelude::*;
use serde::Serialize;

use crate::scenario::model::{ActionKind, StepFamily};
use crate::scenario::space::{PlacedFault, Space};

/// One concrete schedule: the faults a case injects.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Schedule {
    /// The faults, by start (then kind and target).
    pub faults: Vec<PlacedFault>,
}

impl Schedule {
    /// `pause db @3s for 2s + kill web @0s for 1s`, or `no faults`.
    pub fn label(&self) -> String {
        if self.faults.is_empty() {
            return "no faults".into();
        }
        self.faults.iter().map(PlacedFault::label).collect::<Vec<_>>().join(" + ")
    }

    /// The sum of the faults' durations (a restart counts as zero): the "size" shrinking lowers
    /// after the number of faults.
    pub fn total_duration(&self) -> Duration {
        self.faults.iter().filter_map(|f| f.duration).sum()
    }

    /// When the last fault ends, from the group's start.
    pub fn end(&self) -> Duration {
        self.faults
            .iter()
            .map(|f| f.start + f.duration.unwrap_or_default())
            .max()
            .unwrap_or_default()
    }
}

/// Every (kind, target) pair of the space, in the order written.
pub fn pairs(space: &Space) -> Vec<(usize, usize)> {
    let mut pairs = Vec::new();
    for (choice, fault) in space.faults.iter().enumerate() {
        for target in 0..fault.targets.len() {
            pairs.push((choice, target));
        }
    }
    pairs
}

/// How many steps of `resolution` fit in `low..=high` (at least one value: `low`).
fn steps(low: Duration, high: Duration, resolution: Duration) -> u64 {
    let span = high.saturating_sub(low).as_nanos();
    let step = resolution.as_nanos().max(1);
    u64::try_from(span / step).unwrap_or(u64::MAX)
}

/// A fault as drawn: indices and step counts, before it is placed.
type Raw = (usize, u64, u64);

/// The strategy of a space: between `min-faults` and `max-faults` faults, placed and made
/// consistent by [`place`].
pub fn strategy(space: &Space) -> BoxedStrategy<Schedule> {
    let pairs = pairs(space);
    assert!(!pairs.is_empty(), "validation rejects a space with no (kind, target) pair");
    let window_steps = steps(space.window.0, space.window.1, space.resolution);
    let longest = space
        .faults
        .iter()
        .filter_map(|f| f.duration)
        .map(|(low, high)| steps(low, high, space.resolution))
        .max()
        .unwrap_or(0);
    let raw = (0..pairs.len(), 0..=window_steps, 0..=longest);
    let space = space.clone();
    proptest::collection::vec(raw, space.min_faults..=space.max_faults)
        .prop_map(move |raws| place(&space, &raws))
        .boxed()
}

/// Place drawn faults: start and duration from their step counts (a duration's count is capped
/// by its kind's range), then drop each fault that a schedule cannot hold beside an earlier one:
/// the same kind on the same target (a `parallel` group refuses that), or two container faults
/// on one service that overlap in time (a kill of a paused container is not a schedule, it is a
/// contradiction).
pub fn place(space: &Space, raws: &[Raw]) -> Schedule {
    let pairs = pairs(space);
    let mut faults: Vec<PlacedFault> = Vec::with_capacity(raws.len());
    for &(pair, start_steps, duration_steps) in raws {
        let (choice, target) = pairs[pair % pairs.len()];
        let choice = &space.faults[choice];
        let start =
            space.window.0 + space.resolution * u32::try_from(start_steps).unwrap_or(u32::MAX);
        let duration = choice.duration.map(|(low, high)| {
            let capped = duration_steps.min(steps(low, high, space.resolution));
            low + space.resolution * u32::try_from(capped).unwrap_or(u32::MAX)
        });
        let fault = PlacedFault {
            kind: choice.kind,
            target: choice.targets[target].clone(),
            start: start.min(space.window.1),
            duration: duration.map(|d| d.min(choice.duration.map_or(d, |(_, high)| high))),
            params: choice.params.clone(),
        };
        if faults.iter().any(|earlier| conflicts(earlier, &fault)) {
            continue;
        }
        faults.push(fault);
    }
    faults.sort();
    faults.sort_by_key(|f| f.start);
    Schedule { faults }
}

/// Whether two faults cannot share a schedule (see [`place`]).
pub fn conflicts(a: &PlacedFault, b: &PlacedFault) -> bool {
    if a.target != b.target {
        return false;
    }
    if a.kind == b.kind {
        return true;
    }
    let container =
        |kind: ActionKind| matches!(kind.family(), StepFamily::Container | StepFamily::Fault);
    if !(container(a.kind) && container(b.kind)) {
        return false;
    }
    // A restart has no duration: it occupies its instant (and a moment after).
    let end = |f: &PlacedFault| f.start + f.duration.unwrap_or(Duration::from_millis(1));
    a.start < end(b) && b.start < end(a)
}

/// The schedules one move away from `schedule` that are smaller, simplest first: one fault
/// removed; all faults started as early as the window allows, or a step earlier; one fault started a resolution step earlier; one fault a step shorter at its end;
/// one fault a step shorter at its start. Each stays in the space (window, `for` range) and
/// consistent.
pub fn smaller(space: &Space, schedule: &Schedule) -> Vec<Schedule> {
    let mut out = Vec::new();
    let step = space.resolution;
    let range = |fault: &PlacedFault| {
        space
            .faults
            .iter()
            .find(|choice| choice.kind == fault.kind && choice.targets.contains(&fault.target))
            .and_then(|choice| choice.duration)
    };
    let mut push = |faults: Vec<PlacedFault>| {
        let consistent = faults
            .iter()
            .enumerate()
            .all(|(i, a)| faults[i + 1..].iter().all(|b| !conflicts(a, b)));
        if consistent && faults.len() >= space.min_faults {
            let mut faults = faults;
            faults.sort();
            faults.sort_by_key(|f| f.start);
            out.push(Schedule { faults });
        }
    };
    for i in 0..schedule.faults.len() {
        let mut without = schedule.faults.clone();
        without.remove(i);
        push(without);
    }
    // The whole schedule earlier: faults that fail together may only move together.
    if let Some(first) = schedule.faults.iter().map(|f| f.start).min() {
        let mut shifts = vec![first - space.window.0];
        if first >= space.window.0 + step && step < first - space.window.0 {
            shifts.push(step);
        }
        for shift in shifts.into_iter().filter(|shift| !shift.is_zero()) {
            let mut moved = schedule.faults.clone();
            for fault in &mut moved {
                fault.start -= shift;
            }
            push(moved);
        }
    }
    for i in 0..schedule.faults.len() {
        let fault = &schedule.faults[i];
        let shorter = fault
            .duration
            .zip(range(fault))
            .and_then(|(duration, (low, _))| (duration >= low + step).then(|| duration - step));
        if fault.start >= space.window.0 + step {
            let mut moved = schedule.faults.clone();
            moved[i].start -= step;
            push(moved);
        }
        if let Some(shorter) = shorter {
            let mut cut = schedule.faults.clone();
            cut[i].duration = Some(shorter);
            push(cut);
            if fault.start + step <= space.window.1 {
                let mut cut = schedule.faults.clone();
                cut[i].duration = Some(shorter);
                cut[i].start += step;
                push(cut);
            }
        }
    }
    out
}

/// How much of a space a search touched.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Coverage {
    /// Cases run.
    pub cases: usize,
    /// (kind, target) pairs that some case injected, of all the space's pairs.
    pub pairs_touched: usize,
    /// All the space's (kind, target) pairs.
    pub pairs_total: usize,
    /// Fault kinds that some case injected, of all the space's kinds.
    pub kinds_touched: usize,
    /// All the space's kinds.
    pub kinds_total: usize,
}

impl Coverage {
    /// Coverage of `space` by `schedules`.
    pub fn of<'s>(space: &Space, schedules: impl IntoIterator<Item = &'s Schedule>) -> Coverage {
        let mut pairs = BTreeSet::new();
        let mut kinds = BTreeSet::new();
        let mut cases = 0;
        for schedule in schedules {
            cases += 1;
            for fault in &schedule.faults {
                pairs.insert((fault.kind.key(), fault.target.as_str()));
                kinds.insert(fault.kind.key());
            }
        }
        let all_kinds: BTreeSet<&str> = space.faults.iter().map(|f| f.kind.key()).collect();
        Coverage {
            cases,
            pairs_touched: pairs.len(),
            pairs_total: self::pairs(space).len(),
            kinds_touched: kinds.len(),
            kinds_total: all_kinds.len(),
        }
    }
}
