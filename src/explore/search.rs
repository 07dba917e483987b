//! The search: draw schedules with proptest until one fails a check, then shrink it with the
//! value tree it came from (`simplify` while the candidate still fails the same check,
//! `complicate` when it does not), re-running each failing candidate to tell a real failure from
//! a flaky one.
//!
//! Rules (the README's "Exploring fault schedules"):
//! - The same seed draws the same schedules in the same order (proptest's ChaCha RNG, seeded
//!   from it), so a search replays; the runs themselves are real and may differ.
//! - A shrink candidate counts as failing only when it fails the check the first failure failed
//!   (its first failed check, in `expect:` order), and every one of its `reruns` re-runs does too;
//!   one that fails only sometimes is marked flaky and not taken as the minimum.
//! - A candidate proptest proposes again is not run again (its result is remembered).
//! - The budget is checked between cases: a case that started runs to its end.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use serde::Serialize;

use super::schedule::{self, Coverage, Schedule};
use crate::scenario::space::Space;

/// How long and how hard to search.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Schedules drawn at most in the search phase (`--runs`).
    pub runs: usize,
    /// The seed of the draws (`--seed`).
    pub seed: u64,
    /// Wall-clock budget of the whole search, shrinking included (`--time-budget`).
    pub budget: Duration,
    /// Extra runs of a failing shrink candidate before it is taken (`--reruns`).
    pub reruns: u32,
}

/// What one run of one schedule found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum Verdict {
    /// Every check passed.
    Held,
    /// These checks failed (names, in `expect:` order).
    Failed {
        /// The failed checks.
        checks: Vec<String>,
    },
    /// The harness could not finish the run (a service never became ready, …).
    Aborted {
        /// Why.
        error: String,
    },
    /// The run was interrupted (Ctrl-C).
    Interrupted,
}

impl Verdict {
    fn fails(&self, check: &str) -> bool {
        matches!(self, Verdict::Failed { checks } if checks.iter().any(|c| c == check))
    }
}

/// Which part of the search a case belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// Drawing schedules until one fails.
    Search,
    /// Shrinking the first failure.
    Shrink,
}

/// One run of one schedule (a line of `cases.jsonl`).
#[derive(Debug, Clone, Serialize)]
pub struct CaseRecord {
    /// 1, 2, … in the order run.
    pub case: usize,
    /// Search or shrink.
    pub phase: Phase,
    /// 0 for the first run of a schedule, 1… for its re-runs.
    pub attempt: u32,
    /// The schedule.
    pub schedule: Schedule,
    /// What the run found.
    pub verdict: Verdict,
    /// How long the run took, in milliseconds.
    pub duration_ms: u64,
    /// A shrink candidate that failed the check, then passed it in a re-run (or the other way).
    pub flaky: bool,
    /// A shrink candidate taken as the new smallest failing schedule.
    pub accepted: bool,
}

/// What a caller supplies: running one schedule for real.
pub trait Runner {
    /// Run `schedule` as case number `case`, and say what it found.
    fn run(
        &mut self,
        case: usize,
        phase: Phase,
        schedule: &Schedule,
    ) -> impl Future<Output = Verdict>;

    /// Called with every case once it ran (to stream `cases.jsonl`, show progress).
    fn record(&mut self, _record: &CaseRecord) {}
}

/// The failing schedule found, and what shrinking made of it.
#[derive(Debug, Clone, Serialize)]
pub struct Found {
    /// The check it fails (the first failed, in `expect:` order).
    pub check: String,
    /// The schedule the search found.
    pub first: Schedule,
    /// The smallest schedule that still failed `check` in every run.
    pub minimal: Schedule,
    /// How many candidates were taken as the new minimum.
    pub shrink_steps: usize,
    /// Distinct candidates tried while shrinking (each run `1 + reruns` times at most).
    pub candidates: usize,
    /// Whether shrinking ran out of candidates (true) or out of budget (false).
    pub complete: bool,
    /// Candidates that failed the check only sometimes.
    pub flaky: Vec<Schedule>,
}

/// Why the search stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stop {
    /// Every case of `--runs` ran (or shrinking ended).
    Done,
    /// The time budget ran out.
    Budget,
    /// Interrupted (Ctrl-C).
    Interrupted,
    /// The first case could not run at all: the scenario or the environment is broken.
    Aborted(String),
}

/// The whole search.
#[derive(Debug, Clone, Serialize)]
pub struct Exploration {
    /// Every run, in order.
    pub cases: Vec<CaseRecord>,
    /// The failure found, if any.
    pub found: Option<Found>,
    /// Why it stopped.
    pub stop: Stop,
    /// How much of the space the cases touched.
    pub coverage: Coverage,
}

/// Search `space` with `runner`: see the module's rules.
pub async fn explore<R: Runner>(space: &Space, settings: &Settings, runner: &mut R) -> Exploration {
    let mut search = Search {
        space,
        runner,
        started: crate::clock::instant_now(),
        budget: settings.budget,
        reruns: settings.reruns,
        cases: Vec::new(),
        stop: Stop::Done,
    };
    let strategy = schedule::strategy(space);
    let mut seed = [0u8; 32];
    seed[..8].copy_from_slice(&settings.seed.to_le_bytes());
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &seed);
    let mut draws = TestRunner::new_with_rng(Config::default(), rng);

    let mut found = None;
    for _ in 0..settings.runs {
        if search.out_of_time() {
            search.stop = Stop::Budget;
            break;
        }
        let tree = strategy.new_tree(&mut draws).expect("the strategy has no filter");
        let schedule = tree.current();
        let verdict = search.run(Phase::Search, 0, &schedule, false, false).await;
        match verdict {
            Verdict::Failed { checks } => {
                let check = checks[0].clone();
                found = Some(search.shrink(tree, check, schedule).await);
                break;
            }
            Verdict::Interrupted => {
                search.stop = Stop::Interrupted;
                break;
            }
            Verdict::Aborted { error } if search.cases.len() == 1 => {
                search.stop = Stop::Aborted(error);
                break;
            }
            Verdict::Held | Verdict::Aborted { .. } => {}
        }
    }
    let coverage = Coverage::of(space, search.cases.iter().map(|c| &c.schedule));
    let coverage = Coverage { cases: search.cases.len(), ..coverage };
    Exploration { cases: search.cases, found, stop: search.stop, coverage }
}

struct Search<'r, R> {
    space: &'r Space,
    runner: &'r mut R,
    started: tokio::time::Instant,
    budget: Duration,
    reruns: u32,
    cases: Vec<CaseRecord>,
    stop: Stop,
}

impl<R: Runner> Search<'_, R> {
    fn out_of_time(&self) -> bool {
        crate::clock::instant_now().duration_since(self.started) >= self.budget
    }

    /// Run once and record it.
    async fn run(
        &mut self,
        phase: Phase,
        attempt: u32,
        schedule: &Schedule,
        flaky: bool,
        accepted: bool,
    ) -> Verdict {
        let mut record = self.run_unrecorded(phase, attempt, schedule).await;
        record.flaky = flaky;
        record.accepted = accepted;
        let verdict = record.verdict.clone();
        self.commit(record);
        verdict
    }

    async fn run_unrecorded(
        &mut self,
        phase: Phase,
        attempt: u32,
        schedule: &Schedule,
    ) -> CaseRecord {
        let case = self.cases.len() + 1;
        let began = crate::clock::instant_now();
        let verdict = self.runner.run(case, phase, schedule).await;
        CaseRecord {
            case,
            phase,
            attempt,
            schedule: schedule.clone(),
            verdict,
            duration_ms: u64::try_from(began.elapsed().as_millis()).unwrap_or(u64::MAX),
            flaky: false,
            accepted: false,
        }
    }

    fn commit(&mut self, record: CaseRecord) {
        self.runner.record(&record);
        self.cases.push(record);
    }

    /// Whether `candidate` fails `check` in its run and every re-run, and whether it failed only
    /// sometimes (`None`: interrupted).
    async fn fails(&mut self, candidate: &Schedule, check: &str) -> Option<(bool, bool)> {
        // Every attempt before this one failed the check (the loop ends at the first that does not).
        for attempt in 0..=self.reruns {
            let mut record = self.run_unrecorded(Phase::Shrink, attempt, candidate).await;
            if record.verdict == Verdict::Interrupted {
                self.commit(record);
                return None;
            }
            if !record.verdict.fails(check) {
                let flaky = attempt > 0;
                record.flaky = flaky;
                self.commit(record);
                return Some((false, flaky));
            }
            if attempt == self.reruns {
                record.accepted = true;
                self.commit(record);
                return Some((true, false));
            }
            self.commit(record);
            if self.out_of_time() {
                // Not confirmed within the budget: not taken.
                return Some((false, false));
            }
        }
        unreachable!("the last attempt returns")
    }

    async fn shrink(
        &mut self,
        mut tree: Box<dyn ValueTree<Value = Schedule>>,
        check: String,
        first: Schedule,
    ) -> Found {
        let mut minimal = first.clone();
        let mut known: HashMap<Schedule, bool> = HashMap::from([(first.clone(), true)]);
        let mut flaky = Vec::new();
        let mut steps = 0;
        let mut complete = true;
        if tree.simplify() {
            loop {
                if self.out_of_time() {
                    self.stop = Stop::Budget;
                    complete = false;
                    break;
                }
                let candidate = tree.current();
                let fails = match known.get(&candidate) {
                    Some(fails) => *fails,
                    None => match self.fails(&candidate, &check).await {
                        None => {
                            self.stop = Stop::Interrupted;
                            complete = false;
                            break;
                        }
                        Some((fails, was_flaky)) => {
                            if was_flaky {
                                flaky.push(candidate.clone());
                            }
                            known.insert(candidate.clone(), fails);
                            fails
                        }
                    },
                };
                let more = if fails {
                    if candidate != minimal {
                        steps += 1;
                    }
                    minimal = candidate;
                    tree.simplify()
                } else {
                    tree.complicate()
                };
                if !more {
                    break;
                }
            }
        }
        // proptest shrinks each number once, in order, and never goes back: a start that could
        // not move while the duration was long may move once it is short. Finish with single
        // steps until none is smaller and still fails.
        if complete {
            'polish: loop {
                for candidate in schedule::smaller(self.space, &minimal) {
                    if self.out_of_time() {
                        self.stop = Stop::Budget;
                        complete = false;
                        break 'polish;
                    }
                    let fails = match known.get(&candidate) {
                        Some(fails) => *fails,
                        None => match self.fails(&candidate, &check).await {
                            None => {
                                self.stop = Stop::Interrupted;
                                complete = false;
                                break 'polish;
                            }
                            Some((fails, was_flaky)) => {
                                if was_flaky {
                                    flaky.push(candidate.clone());
                                }
                                known.insert(candidate.clone(), fails);
                                fails
                            }
                        },
                    };
                    if fails {
                        steps += 1;
                        minimal = candidate;
                        continue 'polish;
                    }
                }
                break;
            }
        }
        Found {
            check,
            first,
            minimal,
            shrink_steps: steps,
            candidates: known.len() - 1,
            complete,
            flaky,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use super::*;
    use crate::scenario::model::ActionKind;
    use crate::scenario::space::PlacedFault;

    fn space(faults: &str, max: usize) -> Space {
        let source = format!(
            "name: t
stack:
  services:
    db: {{ image: postgres:15 }}
    web: {{ image: nginx:1 }}
steps:
  - wait: 1s
explore:
  window: 0s..30s
  max-faults: {max}
  faults:
{faults}"
        );
        let (_, space) = crate::scenario::parse_with_space(&source, Path::new("t.yaml"))
            .unwrap_or_else(|invalid| panic!("{}", crate::scenario::render(&invalid, false)));
        space.expect("explore")
    }

    const FAULTS: &str = "    - kill: { services: [web, db], for: 1s..5s }
    - pause: { services: [web, db], for: 1s..10s }
    - restart: { services: [web] }
";

    /// A model of a stack: fails `check` when `property` holds of the schedule; `flaky` makes
    /// every other run of a failing schedule pass.
    struct Model<P> {
        property: P,
        flaky: bool,
        runs: usize,
        recorded: Vec<CaseRecord>,
    }

    impl<P: Fn(&Schedule) -> bool> Runner for Model<P> {
        async fn run(&mut self, _case: usize, _phase: Phase, schedule: &Schedule) -> Verdict {
            self.runs += 1;
            if (self.property)(schedule) && !(self.flaky && self.runs % 2 == 0) {
                Verdict::Failed { checks: vec!["db-ok".into(), "other".into()] }
            } else {
                Verdict::Held
            }
        }

        fn record(&mut self, record: &CaseRecord) {
            self.recorded.push(record.clone());
        }
    }

    fn model<P: Fn(&Schedule) -> bool>(property: P) -> Model<P> {
        Model { property, flaky: false, runs: 0, recorded: Vec::new() }
    }

    fn settings(seed: u64) -> Settings {
        Settings { runs: 500, seed, budget: Duration::from_secs(60), reruns: 0 }
    }

    fn span(fault: &PlacedFault) -> (Duration, Duration) {
        (fault.start, fault.start + fault.duration.unwrap_or_default())
    }

    fn overlaps(a: (Duration, Duration), b: (Duration, Duration)) -> bool {
        a.0 < b.1 && b.0 < a.1
    }

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    fn pause_db_in_10_to_20(schedule: &Schedule) -> bool {
        schedule.faults.iter().any(|f| {
            f.kind == ActionKind::Pause
                && f.target == "db"
                && overlaps(span(f), (secs(10), secs(20)))
        })
    }

    #[tokio::test]
    async fn a_pause_of_db_over_10_to_20_shrinks_to_one_second_at_10() {
        let space = space(FAULTS, 3);
        let mut runner = model(pause_db_in_10_to_20);
        let exploration = explore(&space, &settings(7), &mut runner).await;
        let found = exploration.found.expect("the search finds it");
        assert_eq!(found.check, "db-ok");
        let minimal: Vec<_> = found.minimal.faults.iter().map(PlacedFault::label).collect();
        assert_eq!(minimal, ["pause db @10s for 1s"], "from {}", found.first.label());
        assert!(found.complete);
        assert_eq!(exploration.stop, Stop::Done);
        // Every run went to the runner's record, in order, and the minimum among them failed.
        assert_eq!(runner.recorded.len(), exploration.cases.len());
        assert!(exploration.cases.iter().any(|c| c.accepted && c.schedule == found.minimal));
        assert!(exploration.cases.iter().any(|c| c.phase == Phase::Shrink));
    }

    #[tokio::test]
    async fn a_pause_overlapping_a_kill_shrinks_to_exactly_the_two_with_minimal_durations() {
        let space = space(FAULTS, 4);
        let both = |schedule: &Schedule| {
            let find = |kind, target: &str| {
                schedule.faults.iter().find(|f| f.kind == kind && f.target == target).map(span)
            };
            match (find(ActionKind::Pause, "db"), find(ActionKind::Kill, "web")) {
                (Some(a), Some(b)) => overlaps(a, b),
                _ => false,
            }
        };
        for seed in [1, 2, 3] {
            let mut runner = model(both);
            let found = explore(&space, &settings(seed), &mut runner).await.found;
            let found = found.unwrap_or_else(|| panic!("seed {seed}: nothing found"));
            let mut minimal: Vec<_> = found.minimal.faults.iter().map(PlacedFault::label).collect();
            minimal.sort();
            assert_eq!(minimal, ["kill web @0s for 1s", "pause db @0s for 1s"], "seed {seed}");
        }
    }

    #[tokio::test]
    async fn the_same_seed_draws_the_same_cases_and_another_seed_others() {
        let space = space(FAULTS, 3);
        let never = |_: &Schedule| false;
        let run = |seed| {
            let space = space.clone();
            async move {
                let mut settings = settings(seed);
                settings.runs = 20;
                let mut runner = model(never);
                let exploration = explore(&space, &settings, &mut runner).await;
                exploration.cases.into_iter().map(|c| c.schedule).collect::<Vec<_>>()
            }
        };
        let (a, b, c) = (run(42).await, run(42).await, run(43).await);
        assert_eq!(a.len(), 20);
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[tokio::test]
    async fn nothing_failing_reports_coverage_and_a_zero_budget_stops_at_once() {
        let space = space(FAULTS, 3);
        let mut runner = model(|_: &Schedule| false);
        let mut settings = settings(1);
        settings.runs = 60;
        let exploration = explore(&space, &settings, &mut runner).await;
        assert!(exploration.found.is_none());
        assert_eq!(exploration.stop, Stop::Done);
        let coverage = &exploration.coverage;
        assert_eq!((coverage.cases, coverage.pairs_total, coverage.kinds_total), (60, 5, 3));
        assert_eq!((coverage.pairs_touched, coverage.kinds_touched), (5, 3));

        settings.budget = Duration::ZERO;
        let exploration = explore(&space, &settings, &mut model(|_: &Schedule| false)).await;
        assert_eq!((exploration.cases.len(), exploration.stop), (0, Stop::Budget));
    }

    #[tokio::test]
    async fn a_flaky_candidate_is_re_run_marked_and_not_taken() {
        let space = space(FAULTS, 3);
        let mut runner = model(pause_db_in_10_to_20);
        runner.flaky = true;
        let mut settings = settings(7);
        settings.reruns = 1;
        let exploration = explore(&space, &settings, &mut runner).await;
        let found = exploration.found.expect("the first run of each schedule fails");
        // Every candidate failed once, then passed its re-run: none was taken.
        assert_eq!(found.minimal, found.first);
        assert!(!found.flaky.is_empty());
        assert!(exploration.cases.iter().any(|c| c.flaky && c.attempt == 1));
        assert!(!exploration.cases.iter().any(|c| c.accepted));
    }
}
