//! The runner `firedrill explore` uses: each schedule written into the scenario's text
//! (`DIR/cases/NNNN/scenario.yaml`), read back like any scenario file, and run as one real
//! [`Rehearsal`] on a shared backend, its journal and `report.json` kept beside it.
//!
//! The stack is brought up fresh for every case, unless the space says `reuse-stack: true`: then
//! the cases share one [`StackKeeper`], which keeps a cleanly ended case's stack up for the next
//! (checked clean and restored first, renewed when it is not; see `engine::keep`). The caller
//! closes the keeper ([`RehearsalRunner::close`]) when the search is over.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::schedule::Schedule;
use super::search::{CaseRecord, Phase, Runner, Verdict};
use crate::backend::Backend;
use crate::checks::CheckStatus;
use crate::engine::{RunOptions, Signals, StackKeeper};
use crate::rehearsal::Rehearsal;
use crate::report::RunStatus;
use crate::scenario::space::{Space, render_schedule};

/// Runs each schedule as a rehearsal.
pub struct RehearsalRunner {
    /// The scenario's text, with its `explore:` section.
    pub source: String,
    /// The scenario file's folder (relative paths in it start there).
    pub folder: PathBuf,
    /// The space (for `at`).
    pub space: Space,
    /// Where each case's folder goes: `DIR/cases/NNNN/`.
    pub dir: PathBuf,
    /// The backend every case runs on.
    pub backend: Arc<dyn Backend>,
    /// Ctrl-C: the case running is interrupted and no other starts.
    pub signals: Signals,
    /// The seed of each run's own random choices (fault targets, toxicity).
    pub seed: u64,
    /// The fault ledger's folder.
    pub state_dir: Option<PathBuf>,
    /// Called with every case once it ran.
    pub on_record: Box<dyn FnMut(&CaseRecord) + Send>,
    /// The stack kept between cases (`reuse-stack: true`), `None` for a fresh stack per case.
    pub keeper: Option<Arc<tokio::sync::Mutex<StackKeeper>>>,
}

impl RehearsalRunner {
    /// `DIR/cases/NNNN`.
    pub fn case_dir(dir: &Path, case: usize) -> PathBuf {
        dir.join("cases").join(format!("{case:04}"))
    }

    /// Tear down the stack kept between cases, if any.
    pub async fn close(&mut self) {
        if let Some(keeper) = &self.keeper {
            keeper.lock().await.close().await;
        }
    }

    /// The scenario text of `schedule`.
    pub fn text(&self, schedule: &Schedule) -> Result<String, String> {
        render_schedule(&self.source, &self.folder, &self.space, &schedule.faults)
            .map_err(|error| error.to_string())
    }
}

impl Runner for RehearsalRunner {
    async fn run(&mut self, case: usize, _phase: Phase, schedule: &Schedule) -> Verdict {
        if self.signals.interrupt.is_cancelled() {
            return Verdict::Interrupted;
        }
        let dir = Self::case_dir(&self.dir, case);
        let text = match self.text(schedule) {
            Ok(text) => text,
            Err(error) => return Verdict::Aborted { error },
        };
        let path = dir.join("scenario.yaml");
        if let Err(error) = fs_err::create_dir_all(&dir).and_then(|()| fs_err::write(&path, &text))
        {
            return Verdict::Aborted { error: error.to_string() };
        }
        let scenario = match crate::scenario::parse(&text, &path) {
            Ok(scenario) => scenario,
            Err(invalid) => {
                let rendered = crate::scenario::render(&invalid, false);
                return Verdict::Aborted {
                    error: format!("the case's scenario is invalid:\n{rendered}"),
                };
            }
        };
        let options = RunOptions {
            report_dir: Some(dir),
            keep: false,
            seed: Some(self.seed),
            state_dir: self.state_dir.clone(),
            pull: None,
            jobs: None,
            // Nobody answers a `human` step in a case: it ends at its deadline.
            gameday: Default::default(),
        };
        let mut rehearsal = Rehearsal::from_scenario(scenario)
            .options(options)
            .backend(self.backend.clone())
            .signals(self.signals.clone())
            .only_run_files();
        if let Some(keeper) = &self.keeper {
            rehearsal = rehearsal.keeper(keeper.clone());
        }
        let outcome = rehearsal.run().await;
        match outcome {
            Err(error) => Verdict::Aborted { error: error.to_string() },
            Ok(outcome) => match outcome.status() {
                RunStatus::Interrupted => Verdict::Interrupted,
                RunStatus::Aborted => Verdict::Aborted {
                    error: outcome.error().map_or_else(|| "aborted".into(), ToString::to_string),
                },
                RunStatus::Completed | RunStatus::Deviated => {
                    let checks: Vec<String> = outcome
                        .verdicts()
                        .iter()
                        .filter(|v| v.status == CheckStatus::Failed)
                        .map(|v| v.name.clone())
                        .collect();
                    if checks.is_empty() { Verdict::Held } else { Verdict::Failed { checks } }
                }
            },
        }
    }

    fn record(&mut self, record: &CaseRecord) {
        (self.on_record)(record);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::backend::fake::FakeBackend;
    use crate::explore::{Settings, Stop, explore};

    /// Pausing `web` for long enough breaks the outage budget; a short pause does not.
    const SCENARIO: &str = "name: fake-explore
stack:
  services:
    web:
      image: fake/web:1
      ports: [80]
      health: { http: { port: 80, path: / }, interval: 100ms }
traffic:
  pages:
    http: { service: web, port: 80, path: / }
    rate: 20/s
    timeout: 200ms
steps:
  - wait: 300ms
  - name: release
    wait: 2s
  - wait: 300ms
explore:
  at: release
  window: 0s..1s
  resolution: 500ms
  max-faults: 2
  faults:
    - pause: { services: [web], for: 500ms..1500ms }
expect:
  - slo: { traffic: pages, max-outage: 700ms }
";

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_explore_on_the_fake_backend_finds_shrinks_and_its_minimum_replays() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fake.yaml");
        fs_err::write(&path, SCENARIO).unwrap();
        let (_, space, source) = crate::scenario::load_with_space(&path).unwrap();
        let space = space.unwrap();
        let records = Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = records.clone();
        let backend = Arc::new(FakeBackend::new());
        let mut runner = RehearsalRunner {
            source,
            folder: dir.path().to_path_buf(),
            space: space.clone(),
            dir: dir.path().join("out"),
            backend: backend.clone(),
            signals: Signals::default(),
            seed: 3,
            state_dir: None,
            on_record: Box::new(move |record: &CaseRecord| seen.lock().unwrap().push(record.case)),
            keeper: None,
        };
        let settings = Settings { runs: 8, seed: 11, budget: Duration::from_secs(120), reruns: 0 };
        let exploration = explore(&space, &settings, &mut runner).await;
        let found = exploration.found.as_ref().unwrap_or_else(|| {
            panic!(
                "nothing found in {:?}",
                exploration
                    .cases
                    .iter()
                    .map(|c| (c.schedule.label(), &c.verdict))
                    .collect::<Vec<_>>()
            )
        });
        assert_eq!(found.check, "slo pages");
        assert_eq!(exploration.stop, Stop::Done);
        assert_eq!(found.minimal.faults.len(), 1, "{}", found.minimal.label());
        assert!(found.minimal.total_duration() <= found.first.total_duration());
        assert_eq!(found.minimal.faults[0].start, Duration::ZERO, "{}", found.minimal.label());
        // Every case ran for real: its scenario, journal and report are kept.
        assert_eq!(*records.lock().unwrap(), (1..=exploration.cases.len()).collect::<Vec<_>>());
        for case in &exploration.cases {
            let case_dir = RehearsalRunner::case_dir(&dir.path().join("out"), case.case);
            for file in ["scenario.yaml", "journal.jsonl", "report.json"] {
                assert!(case_dir.join(file).is_file(), "{}/{file}", case_dir.display());
            }
        }
        // The minimum, written as an ordinary scenario elsewhere, fails the same check again.
        let text = runner.text(&found.minimal).unwrap();
        let minimal = dir.path().join("out/minimal.yaml");
        fs_err::write(&minimal, &text).unwrap();
        let outcome =
            Rehearsal::from_file(&minimal).unwrap().backend(backend).seed(3).run().await.unwrap();
        assert_eq!(outcome.status(), RunStatus::Deviated, "{}", outcome.summary());
        assert_eq!(outcome.unmet().map(|v| v.name.as_str()).collect::<Vec<_>>(), ["slo pages"]);
    }

    /// The journal's event names, in order.
    fn events(dir: &Path) -> Vec<String> {
        crate::journal::read_journal(&dir.join("journal.jsonl"))
            .unwrap()
            .iter()
            .map(|e| serde_json::to_value(e).unwrap()["event"].as_str().unwrap().to_owned())
            .collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn with_reuse_stack_the_cases_share_one_stack_each_with_its_own_journal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fake.yaml");
        let text = SCENARIO.replace("explore:\n", "explore:\n  reuse-stack: true\n");
        fs_err::write(&path, text).unwrap();
        let (_, space, source) = crate::scenario::load_with_space(&path).unwrap();
        let space = space.unwrap();
        assert!(space.reuse_stack);
        let backend = Arc::new(FakeBackend::new());
        let mut runner = RehearsalRunner {
            source,
            folder: dir.path().to_path_buf(),
            space: space.clone(),
            dir: dir.path().join("out"),
            backend: backend.clone(),
            signals: Signals::default(),
            seed: 3,
            state_dir: Some(dir.path().join("state")),
            on_record: Box::new(|_: &CaseRecord| {}),
            keeper: Some(Arc::new(tokio::sync::Mutex::new(StackKeeper::default()))),
        };
        let settings = Settings { runs: 8, seed: 11, budget: Duration::from_secs(120), reruns: 0 };
        let exploration = explore(&space, &settings, &mut runner).await;
        assert!(exploration.cases.len() >= 3, "{:?}", exploration.cases);
        // Until closed, the last clean case's stack is still up; then nothing is left.
        assert!(!backend.leftovers().is_empty());
        runner.close().await;
        assert!(backend.leftovers().is_empty(), "{:?}", backend.leftovers());
        assert_eq!(backend.shutdowns().len(), 1, "one stack for every case");
        let ledgers = dir.path().join("state/ledger");
        let left = fs_err::read_dir(&ledgers).map(|d| d.count()).unwrap_or(0);
        assert_eq!(left, 0, "no fault ledger left in {}", ledgers.display());
        let same_verdicts = exploration.found.as_ref().map(|found| found.check.as_str());
        assert_eq!(same_verdicts, Some("slo pages"));
        for case in &exploration.cases {
            let case_dir = RehearsalRunner::case_dir(&dir.path().join("out"), case.case);
            let events = events(&case_dir);
            assert_eq!(events.first().map(String::as_str), Some("run-started"), "{events:?}");
            assert!(events.iter().any(|e| e == "run-ended"), "case {}: {events:?}", case.case);
            let reused = events.iter().any(|e| e == "stack-reused");
            let brought_up = events.iter().any(|e| e == "service-started");
            assert_eq!(reused, case.case > 1, "case {}: {events:?}", case.case);
            assert_eq!(brought_up, case.case == 1, "case {}: {events:?}", case.case);
            assert!(case_dir.join("report.json").is_file());
        }
    }

    /// Two runs of `path` on one kept stack (`DIR/1`, `DIR/2`); their statuses and the services
    /// the second restored (`None`: it did not reuse the stack).
    async fn two_cases_on_a_kept_stack(
        path: &Path,
        dir: &Path,
        backend: &Arc<FakeBackend>,
        keeper: &Arc<tokio::sync::Mutex<StackKeeper>>,
    ) -> (Vec<RunStatus>, Option<Vec<String>>) {
        let mut statuses = Vec::new();
        for case in 1..=2 {
            let outcome = Rehearsal::from_file(path)
                .unwrap()
                .backend(backend.clone())
                .report_dir(dir.join(format!("{case}")))
                .keeper(keeper.clone())
                .run()
                .await
                .unwrap();
            statuses.push(outcome.status());
        }
        let second = crate::journal::read_journal(&dir.join("2/journal.jsonl")).unwrap();
        let restored = second.iter().find_map(|e| match &e.kind {
            crate::journal::EventKind::StackReused { restored, .. } => Some(restored.clone()),
            _ => None,
        });
        (statuses, restored)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_kept_stack_is_restored_to_its_original_version_and_renewed_for_another_stack() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("upgrade.yaml");
        fs_err::write(
            &path,
            "name: fake-keep
stack:
  services:
    web:
      image: fake/web:1
      ports: [80]
      health: { http: { port: 80, path: / }, interval: 100ms }
steps:
  - upgrade: { service: web, image: fake/web:2, strategy: recreate, deadline: 5s }
  - wait: 200ms
expect:
  - upgrade-succeeds: upgrade web
",
        )
        .unwrap();
        let backend = Arc::new(FakeBackend::new());
        let keeper = Arc::new(tokio::sync::Mutex::new(StackKeeper::default()));
        let (statuses, restored) =
            two_cases_on_a_kept_stack(&path, dir.path(), &backend, &keeper).await;
        assert_eq!(statuses, [RunStatus::Completed, RunStatus::Completed]);
        let reused = restored.expect("the second case reused the stack");
        assert_eq!(reused, ["web"], "web ran 2 after the first case: recreated at 1");
        assert!(keeper.lock().await.is_keeping());
        // Another stack definition: the kept one goes, a fresh one comes up, journaled.
        let text = fs_err::read_to_string(&path).unwrap().replace("100ms", "150ms");
        fs_err::write(&path, text).unwrap();
        let outcome = Rehearsal::from_file(&path)
            .unwrap()
            .backend(backend.clone())
            .report_dir(dir.path().join("3"))
            .keeper(keeper.clone())
            .run()
            .await
            .unwrap();
        assert_eq!(outcome.status(), RunStatus::Completed, "{}", outcome.summary());
        let third = events(&dir.path().join("3"));
        assert!(third.iter().any(|e| e == "stack-renewed"), "{third:?}");
        assert!(third.iter().any(|e| e == "service-started"), "{third:?}");
        assert_eq!(backend.shutdowns().len(), 1, "the first stack is gone");
        keeper.lock().await.close().await;
        assert_eq!(backend.shutdowns().len(), 2);
        assert!(backend.leftovers().is_empty(), "{:?}", backend.leftovers());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_kept_replicated_service_is_restored_to_its_original_image_on_every_replica() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rolling.yaml");
        fs_err::write(
            &path,
            "name: fake-keep-replicas
stack:
  services:
    web:
      image: fake/web:1
      replicas: 3
      ports: [80]
      health: { http: { port: 80, path: / }, interval: 100ms }
steps:
  - upgrade: { service: web, image: fake/web:2, strategy: rolling, deadline: 5s }
  - wait: 200ms
expect:
  - upgrade-succeeds: upgrade web
",
        )
        .unwrap();
        let backend = Arc::new(FakeBackend::new());
        let keeper = Arc::new(tokio::sync::Mutex::new(StackKeeper::default()));
        let (statuses, restored) =
            two_cases_on_a_kept_stack(&path, dir.path(), &backend, &keeper).await;
        assert_eq!(statuses, [RunStatus::Completed, RunStatus::Completed]);
        let reused = restored.expect("the second case reused the stack");
        assert_eq!(reused, ["web"], "web's replicas ran 2 after the first case");
        // Every replica went back to 1 between the first case's upgrade and the second's.
        let ops = backend.operations();
        let first_upgrade = ops.iter().position(|op| op.ends_with("fake/web:2")).unwrap();
        let restored: Vec<&String> = ops[first_upgrade..]
            .iter()
            .filter(|op| op.starts_with("start web.") && op.ends_with("fake/web:1"))
            .collect();
        assert_eq!(restored.len(), 3, "{ops:?}");
        keeper.lock().await.close().await;
        assert!(backend.leftovers().is_empty(), "{:?}", backend.leftovers());
    }
}
