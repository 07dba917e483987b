//! The regression gate: which key figures of a run got worse than allowed against a baseline run.
//!
//! A figure regresses when it moved in its worse direction by more than `max_percent` of the
//! baseline's value **and** by more than its unit's noise floor (time figures: `floor_ms`, 100 ms
//! by default, since health checks observe at their interval; percentages: 1 point; counts:
//! none). A baseline of 0 makes any worsening beyond the floor a regression. Figures only one of
//! the two runs has (a rollback that did not happen this time) are not compared; they are listed.

use super::entry::{Better, Figure, Unit};

/// How much worse a figure may get.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RegressionPolicy {
    /// Allowed worsening, in percent of the baseline's value.
    pub max_percent: f64,
    /// Time figures: changes up to this many milliseconds are noise.
    pub floor_ms: f64,
}

impl RegressionPolicy {
    /// The default noise floor of time figures, ms.
    pub const DEFAULT_FLOOR_MS: f64 = 100.0;

    fn floor(&self, unit: Unit) -> f64 {
        match unit {
            Unit::Ms => self.floor_ms,
            Unit::Percent => 1.0,
            Unit::Count => 0.0,
        }
    }
}

/// One figure that got worse than allowed.
#[derive(Debug, Clone, PartialEq)]
pub struct Regression {
    /// The figure's name.
    pub figure: String,
    /// Its unit.
    pub unit: Unit,
    /// The baseline run's value.
    pub baseline: f64,
    /// This run's value.
    pub current: f64,
    /// How much worse, in percent of the baseline (infinite from a baseline of 0).
    pub worse_by_percent: f64,
}

impl Regression {
    /// One line naming the figure, both values and both runs.
    pub fn describe(&self, baseline_run: &str, current_run: &str, max_percent: f64) -> String {
        let worse = if self.worse_by_percent.is_finite() {
            format!("{:.1}% worse", self.worse_by_percent)
        } else {
            "worse than a baseline of 0".to_owned()
        };
        format!(
            "`{}` regressed: {} in {current_run} against {} in baseline {baseline_run} ({worse}; at most {}% allowed)",
            self.figure,
            self.unit.format(self.current),
            self.unit.format(self.baseline),
            trim_percent(max_percent),
        )
    }
}

fn trim_percent(value: f64) -> String {
    let text = format!("{value:.2}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// What the gate found.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GateOutcome {
    /// How many figures both runs have.
    pub compared: usize,
    /// The ones that got worse than allowed, in this run's order.
    pub regressions: Vec<Regression>,
    /// Figures of the baseline this run does not have.
    pub missing: Vec<String>,
}

/// Compare `current`'s figures with `baseline`'s.
pub fn regressions(
    baseline: &[Figure],
    current: &[Figure],
    policy: RegressionPolicy,
) -> GateOutcome {
    let mut outcome = GateOutcome::default();
    for figure in current {
        let Some(before) = baseline.iter().find(|b| b.name == figure.name && b.unit == figure.unit)
        else {
            continue;
        };
        outcome.compared += 1;
        outcome.regressions.extend(judge(before, figure, policy));
    }
    outcome.missing = baseline
        .iter()
        .filter(|b| !current.iter().any(|f| f.name == b.name))
        .map(|b| b.name.clone())
        .collect();
    outcome
}

/// Whether `figure` regressed against `before` (the same figure of the baseline run).
pub(crate) fn judge(
    before: &Figure,
    figure: &Figure,
    policy: RegressionPolicy,
) -> Option<Regression> {
    let worse = match figure.better {
        Better::Lower => figure.value - before.value,
        Better::Higher => before.value - figure.value,
    };
    if worse <= policy.floor(figure.unit) || worse <= 0.0 {
        return None;
    }
    let worse_by_percent =
        if before.value == 0.0 { f64::INFINITY } else { worse * 100.0 / before.value.abs() };
    (worse_by_percent > policy.max_percent).then(|| Regression {
        figure: figure.name.clone(),
        unit: figure.unit,
        baseline: before.value,
        current: figure.value,
        worse_by_percent,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figure(name: &str, value: f64, unit: Unit, better: Better) -> Figure {
        Figure { name: name.into(), value, unit, better }
    }

    const POLICY: RegressionPolicy = RegressionPolicy { max_percent: 20.0, floor_ms: 100.0 };

    #[test]
    fn a_slower_restore_beyond_the_limit_regresses() {
        let baseline = [figure("time-to-restore (u)", 1_000.0, Unit::Ms, Better::Lower)];
        let slower = [figure("time-to-restore (u)", 1_500.0, Unit::Ms, Better::Lower)];
        let outcome = regressions(&baseline, &slower, POLICY);
        assert_eq!(outcome.compared, 1);
        assert_eq!(outcome.regressions.len(), 1);
        let regression = &outcome.regressions[0];
        assert_eq!(regression.worse_by_percent, 50.0);
        assert_eq!(
            regression.describe("fd-a", "fd-b", 20.0),
            "`time-to-restore (u)` regressed: 1.500s in fd-b against 1.000s in baseline fd-a \
             (50.0% worse; at most 20% allowed)"
        );
        let within = [figure("time-to-restore (u)", 1_190.0, Unit::Ms, Better::Lower)];
        assert!(regressions(&baseline, &within, POLICY).regressions.is_empty());
        let faster = [figure("time-to-restore (u)", 100.0, Unit::Ms, Better::Lower)];
        assert!(regressions(&baseline, &faster, POLICY).regressions.is_empty());
    }

    #[test]
    fn changes_below_the_noise_floor_do_not_count() {
        // 3 ms → 40 ms is 13 times slower, but within one health-check interval.
        let baseline = [figure("p95-latency (t)", 3.0, Unit::Ms, Better::Lower)];
        let current = [figure("p95-latency (t)", 40.0, Unit::Ms, Better::Lower)];
        assert!(regressions(&baseline, &current, POLICY).regressions.is_empty());
        let strict = RegressionPolicy { floor_ms: 0.0, ..POLICY };
        assert_eq!(regressions(&baseline, &current, strict).regressions.len(), 1);
    }

    #[test]
    fn availability_regresses_downwards_and_lost_writes_from_zero() {
        let baseline = [
            figure("availability (t)", 99.0, Unit::Percent, Better::Higher),
            figure("lost-writes (t)", 0.0, Unit::Count, Better::Lower),
        ];
        let current = [
            figure("availability (t)", 70.0, Unit::Percent, Better::Higher),
            figure("lost-writes (t)", 1.0, Unit::Count, Better::Lower),
        ];
        let outcome = regressions(&baseline, &current, POLICY);
        let names: Vec<&str> = outcome.regressions.iter().map(|r| r.figure.as_str()).collect();
        assert_eq!(names, ["availability (t)", "lost-writes (t)"]);
        assert!(outcome.regressions[1].worse_by_percent.is_infinite());
        assert!(
            outcome.regressions[1].describe("a", "b", 20.0).contains("worse than a baseline of 0")
        );
        let better = [figure("availability (t)", 100.0, Unit::Percent, Better::Higher)];
        assert!(regressions(&baseline, &better, POLICY).regressions.is_empty());
    }

    #[test]
    fn figures_of_one_run_only_are_not_compared_but_listed() {
        let baseline = [
            figure("time-to-roll-back (u)", 900.0, Unit::Ms, Better::Lower),
            figure("harness-overhead", 10.0, Unit::Ms, Better::Lower),
        ];
        let current = [
            figure("harness-overhead", 11.0, Unit::Ms, Better::Lower),
            figure("time-to-detect (u)", 50_000.0, Unit::Ms, Better::Lower),
        ];
        let outcome = regressions(&baseline, &current, POLICY);
        assert_eq!(outcome.compared, 1);
        assert!(outcome.regressions.is_empty());
        assert_eq!(outcome.missing, ["time-to-roll-back (u)"]);
    }
}
