//! Dispatching subcommands and mapping their results to exit codes.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;

use super::annotate::{self, Format};
use super::args::{Args, BackendKind, Command};
use super::errors::{ExitStatus, ExpectedError};
use super::history::{RecordOptions, Recorder};
use super::progress::Progress;
use super::repeat;
use crate::engine::{RunOptions, Signals};
use crate::faults;
use crate::rehearsal::Rehearsal;
use crate::report::{self, RunRecord, RunStatus, Stability, WriteOptions};
use crate::scenario::model::{ImageSource, PullPolicy};
use crate::scenario::{self, LoadError, Scenario};
use crate::stack::{Docker, ImageStatus, PullBar, SweepScope};

/// Entry point of the binary: parse arguments, run, return the exit code.
pub fn main() -> ExitCode {
    let args = Args::parse();
    let color = use_color();
    init_tracing(color);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("failed to start the tokio runtime");
    let status = runtime.block_on(dispatch(args, color));
    // Tasks blocked on Docker must not hold the exit hostage.
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    status.into()
}

fn use_color() -> bool {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    !no_color && std::io::stderr().is_terminal()
}

fn init_tracing(color: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("FIREDRILL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(color)
        .with_target(false)
        .try_init();
}

async fn dispatch(args: Args, color: bool) -> ExitStatus {
    let result = match args.command {
        Command::Validate { files, format } => Ok(super::validate::validate(&files, format, color)),
        Command::Run {
            report,
            keep,
            seed,
            strict,
            repeat,
            pull,
            jobs,
            backend,
            format,
            history,
            gate,
            files,
            responders,
            gameday,
        } => {
            let names = if gate.baseline.as_deref().is_some_and(|b| b != "last-pass") {
                load_names(&files)
            } else {
                Vec::new()
            };
            let state = state_dir_quiet();
            let recorder = match Recorder::new(&history, &gate, state.as_deref(), &names) {
                Ok(recorder) => recorder.gate_to_stderr(format == Format::Json),
                Err(error) => {
                    eprintln!("{}", error.render());
                    return ExitStatus::Error;
                }
            };
            let jobs = jobs.map(usize::from);
            let how = (pull, backend);
            let output = (color, format);
            let run_files = (files.as_slice(), (responders.as_deref(), gameday));
            run(run_files, report, (keep, strict), seed, (repeat, jobs), how, output, &recorder)
                .await
        }
        Command::Plan { files, format } => Ok(super::plan::plan(&files, format, color).await),
        Command::Completions { shell } => Ok(super::generate::completions(shell)),
        Command::Man => Ok(super::generate::man()),
        Command::Schema => Ok(super::generate::schema()),
        Command::Report { dir, history } => render_reports(&dir, &history, color),
        Command::History(args) => super::history::history(&args, state_dir_quiet().as_deref()),
        Command::Trend(args) => super::history::trend(&args, state_dir_quiet().as_deref()),
        Command::Images { rebuild, pull, files } => images(files, rebuild, pull, color).await,
        Command::Gc { run, all } => gc(run, all).await,
        Command::Explore(args) => {
            let state = state_dir().filter(|_| args.backend != BackendKind::Fake);
            super::explore::explore(args, color, state).await
        }
        Command::Init { compose, output, profiles } => {
            Ok(super::init::init(&compose, output.as_deref(), &profiles, color))
        }
        Command::Gate { policy, at, notices } => {
            super::gate::gate(&policy, at.as_deref(), notices.as_deref(), color)
        }
    };
    match result {
        Ok(status) => status,
        Err(error) => {
            eprintln!("{}", error.render());
            ExitStatus::Error
        }
    }
}

/// Load every file, printing every diagnostic of every file; `None` if any failed.
fn load_all(files: &[PathBuf], color: bool) -> Option<Vec<Scenario>> {
    let mut scenarios = Vec::with_capacity(files.len());
    let mut failed = false;
    for file in files {
        match scenario::load(file) {
            Ok(scenario) => {
                for warning in scenario.stack.compose.iter().flat_map(|c| &c.warnings) {
                    eprintln!("warning: {warning}");
                }
                scenarios.push(scenario);
            }
            Err(LoadError::Invalid(invalid)) => {
                eprint!("{}", scenario::render(&invalid, color));
                failed = true;
            }
            Err(error) => {
                eprintln!("{}", ExpectedError::from(error).render());
                failed = true;
            }
        }
    }
    (!failed).then_some(scenarios)
}

#[expect(
    clippy::too_many_arguments,
    reason = "one per `run` option group; a struct is the next step"
)]
async fn run(
    (files, people): (&[PathBuf], (Option<&Path>, bool)),
    report_dir: Option<PathBuf>,
    (keep, strict): (bool, bool),
    seed: Option<u64>,
    (repeat, jobs): (u32, Option<usize>),
    (pull, backend_flag): (Option<PullPolicy>, Option<BackendKind>),
    (color, format): (bool, Format),
    recorder: &Recorder,
) -> Result<ExitStatus, ExpectedError> {
    let Some(scenarios) = load_all(files, color) else {
        return Ok(ExitStatus::Error);
    };
    let Ok(gameday) = super::gameday::prepare(&scenarios, people, color).await else {
        return Ok(ExitStatus::Error);
    };
    // One connection per backend the scenarios run on (`--backend`, else each one's `backend:`),
    // made before the first run so an unreachable engine fails at once.
    let mut backends: Vec<(BackendKind, Arc<dyn crate::backend::Backend>)> = Vec::new();
    for scenario in &scenarios {
        let kind = BackendKind::resolve(backend_flag, scenario.backend);
        if backends.iter().any(|(known, _)| *known == kind) {
            continue;
        }
        let backend: Arc<dyn crate::backend::Backend> = match kind {
            BackendKind::Docker => Arc::new(crate::stack::DockerBackend::connect().await?),
            BackendKind::Swarm => Arc::new(crate::stack::swarm::SwarmBackend::connect().await?),
            BackendKind::Fake => Arc::new(crate::backend::fake::FakeBackend::new()),
        };
        backends.push((kind, backend));
    }
    let seed = seed.unwrap_or_else(random_seed);
    eprintln!("seed: {seed} (replay the same choices with --seed {seed})");
    let state = state_dir();
    let signals = Signals::default();
    let watcher = tokio::spawn(watch_signals(signals.clone()));

    let mut worst = ExitStatus::Success;
    let mut records = Vec::with_capacity(scenarios.len());
    let mut failed_checks = Vec::new();
    // Every run's report, also without `--report` (the stability summary needs them).
    let mut reports = Vec::new();
    let names: Vec<&str> = scenarios.iter().map(|s| s.name.as_str()).collect();
    for planned in repeat::plan(&names, repeat, report_dir.as_deref()) {
        if signals.interrupt.is_cancelled() {
            break;
        }
        let scenario = &scenarios[planned.scenario];
        let kind = BackendKind::resolve(backend_flag, scenario.backend);
        let backend = backends
            .iter()
            .find_map(|(known, backend)| (*known == kind).then(|| backend.clone()))
            .expect("connected above");
        // Fake faults end with this process: nothing for a later `firedrill gc` to recover.
        let state_dir = state.clone().filter(|_| kind != BackendKind::Fake);
        if repeat > 1 {
            eprintln!("run {}/{repeat} of `{}`", planned.repetition, scenario.name);
        }
        let progress = Arc::new(Progress::new(color, scenario.all_steps().len()));
        let listener = {
            let progress = progress.clone();
            move |event: &crate::journal::Event| progress.show(event)
        };
        let options = RunOptions {
            report_dir: planned.dir,
            keep,
            seed: Some(seed),
            state_dir,
            pull,
            jobs,
            gameday: gameday.clone(),
        };
        let dir = options.report_dir.clone();
        let outcome = Rehearsal::from_scenario(scenario.clone())
            .options(options)
            .backend(backend)
            .signals(signals.clone())
            .on_event(listener)
            .only_run_files()
            .run()
            .await?;
        progress.finish();

        let (run_id, status) = (outcome.run_id().to_owned(), outcome.status());
        let mut annotations = annotate::checks(scenario, outcome.verdicts());
        if let Some(error) = outcome.error() {
            let file = scenario.source.display().to_string();
            let level = annotate::Level::Error;
            annotations.push(annotate::Annotation::file(level, &file, "run", error.to_string()));
        }
        let (record, error) = outcome.into_record_and_error();
        let stdout_color = color && std::io::stdout().is_terminal();
        let summary = report::render_summary_text(&record.report, stdout_color);
        match format {
            Format::Text => print!("{summary}"),
            Format::Github => {
                print!("{summary}");
                for annotation in &annotations {
                    println!("{}", annotation.github());
                }
            }
            Format::Json => {
                eprint!("{summary}");
                failed_checks.push(annotate::FileResult {
                    file: scenario.source.display().to_string(),
                    ok: annotations.is_empty(),
                    scenario: Some(scenario.name.clone()),
                    annotations,
                });
            }
        }
        let gate = recorder.after_run(&scenario.source, &record).await;
        if repeat > 1 {
            reports.push(record.report.clone());
        }
        if dir.is_some() {
            records.push(record);
        }
        if keep && error.is_none() {
            eprintln!(
                "kept: the stack of run {id} is still up (network firedrill-{id}); remove it with `firedrill gc --run {id}`",
                id = run_id
            );
        }
        // No `expect:`: say so loudly; `--strict` fails it.
        let unchecked = scenario.expect.is_empty();
        if unchecked {
            let warning = format!(
                "  NOTHING WAS CHECKED: `{}` has no `expect:` entries{}",
                scenario.name,
                if strict { " (failed: --strict)" } else { "; --strict fails this" }
            );
            if format == Format::Json { eprintln!("{warning}") } else { println!("{warning}") }
        }
        let status = match status {
            RunStatus::Completed if unchecked && strict => ExitStatus::CheckFailed,
            RunStatus::Completed => ExitStatus::Success,
            RunStatus::Deviated => ExitStatus::CheckFailed,
            RunStatus::Aborted => ExitStatus::Error,
            RunStatus::Interrupted => ExitStatus::Interrupted,
        };
        if let Some(error) = error {
            eprintln!("{}", ExpectedError::from(error).render());
        }
        worst = worst.max(status).max(gate);
    }
    watcher.abort();
    if format == Format::Json {
        print!("{}", annotate::Document::new(failed_checks).to_json());
    }
    let stability = (repeat > 1).then(|| report::stability(&reports.iter().collect::<Vec<_>>()));
    if let Some(stability) = &stability {
        let text = report::render_stability_text(stability);
        if format == Format::Json {
            eprint!("{text}")
        } else {
            print!("{text}")
        }
        worst = worst.max(repeat::stability_status(stability));
    }
    if let Some(dir) = &report_dir {
        // After every scenario (also after Ctrl-C): the combined reports cover all that ran.
        write_reports(dir, &records, stability);
    }
    Ok(worst)
}

/// `firedrill report DIR`: rebuild the runs from their journals and render every report again.
fn render_reports(
    dir: &Path,
    history: &RecordOptions,
    color: bool,
) -> Result<ExitStatus, ExpectedError> {
    let runs = report::replay_dir(dir)?;
    let stdout_color = color && std::io::stdout().is_terminal();
    let mut records = Vec::with_capacity(runs.len());
    for run in runs {
        for note in &run.notes {
            eprintln!("note: {note}");
        }
        print!("{}", report::render_summary_text(&run.record.report, stdout_color));
        records.push(run.record);
    }
    let written = write_reports(dir, &records, None);
    super::history::import(history, state_dir_quiet().as_deref(), &records);
    Ok(if written { ExitStatus::Success } else { ExitStatus::Error })
}

/// Write every report into `dir` (appending the summary to `$GITHUB_STEP_SUMMARY` when set) and
/// list what was written on stderr; false if a report could not be written.
fn write_reports(dir: &Path, records: &[RunRecord], stability: Option<Stability>) -> bool {
    let step_summary =
        std::env::var_os("GITHUB_STEP_SUMMARY").filter(|path| !path.is_empty()).map(PathBuf::from);
    let written = report::write_all(dir, records, &WriteOptions { step_summary, stability });
    for path in &written.files {
        eprintln!("report: {}", path.display());
    }
    for failure in &written.failures {
        eprintln!("{}", render_report_error(failure));
    }
    written.failures.is_empty()
}

fn render_report_error(error: &report::ReportError) -> String {
    let mut message = format!("error: {error}");
    if let Some(source) = std::error::Error::source(error) {
        message.push_str(&format!(": {source}"));
    }
    message
}

/// First Ctrl-C or SIGTERM: interrupt; second: kill fast.
pub(super) async fn watch_signals(signals: Signals) {
    let mut terminate =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    next_signal(&mut terminate).await;
    signals.interrupt.cancel();
    next_signal(&mut terminate).await;
    signals.kill_fast.cancel();
}

async fn next_signal(terminate: &mut Option<tokio::signal::unix::Signal>) {
    match terminate.as_mut() {
        Some(terminate) => tokio::select! {
            _ = tokio::signal::ctrl_c() => {},
            _ = terminate.recv() => {},
        },
        None => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// The state folder (fault ledgers): `$FIREDRILL_STATE_DIR`, `$XDG_STATE_HOME/firedrill` or
/// `~/.local/state/firedrill`.
fn state_dir() -> Option<PathBuf> {
    let var = |name: &str| std::env::var_os(name).map(PathBuf::from);
    let dir = faults::state_dir(var("FIREDRILL_STATE_DIR"), var("XDG_STATE_HOME"), var("HOME"));
    if dir.is_none() {
        eprintln!(
            "warning: no state folder (set FIREDRILL_STATE_DIR or HOME); faults are not ledgered"
        );
    }
    dir
}

/// The state folder without the warning (commands that do not ledger faults).
fn state_dir_quiet() -> Option<PathBuf> {
    let var = |name: &str| std::env::var_os(name).map(PathBuf::from);
    faults::state_dir(var("FIREDRILL_STATE_DIR"), var("XDG_STATE_HOME"), var("HOME"))
}

/// The scenario names of `files`, for checking a `--baseline` run before anything runs (files
/// that do not load are reported by the run itself).
fn load_names(files: &[PathBuf]) -> Vec<String> {
    files.iter().filter_map(|file| scenario::load(file).ok()).map(|s| s.name).collect()
}

/// A seed for runs without `--seed`, from the process's random hasher keys.
pub(super) fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    hasher.finish()
}

fn default_scenarios() -> Result<Vec<PathBuf>, ExpectedError> {
    let dir = Path::new("scenarios");
    let mut files: Vec<PathBuf> = fs_err::read_dir(dir)
        .map_err(|_| ExpectedError::NoScenarios)?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml" || ext == "yml"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(ExpectedError::NoScenarios);
    }
    Ok(files)
}

async fn images(
    files: Vec<PathBuf>,
    rebuild: bool,
    pull_all: bool,
    color: bool,
) -> Result<ExitStatus, ExpectedError> {
    let scenarios = if files.is_empty() {
        // Every scenario in `scenarios/`, but one that is invalid on purpose (such as
        // `upgrade-on-tuesday.yaml`) must not stop the images of the others being built.
        let mut scenarios = Vec::new();
        for file in default_scenarios()? {
            match scenario::load(&file) {
                Ok(scenario) => scenarios.push(scenario),
                Err(_) => eprintln!(
                    "note: skipping `{}`: it is invalid (see `firedrill validate {}`)",
                    file.display(),
                    file.display()
                ),
            }
        }
        scenarios
    } else {
        let Some(scenarios) = load_all(&files, color) else {
            return Ok(ExitStatus::Error);
        };
        scenarios
    };
    let docker = Docker::connect().await?;
    let mut seen = std::collections::HashSet::new();
    for scenario in &scenarios {
        for source in scenario.image_sources() {
            let reference = source.reference().to_string();
            if !seen.insert(reference.clone()) {
                continue;
            }
            let mut progress = |line: &str| eprintln!("  | {line}");
            let policy =
                if pull_all { PullPolicy::Always } else { scenario.pull_policy(&reference) };
            let status = match (source, rebuild) {
                (ImageSource::Build(spec), true) => {
                    eprintln!("building {reference}");
                    docker.build_image(spec, policy, &mut progress).await?;
                    ImageStatus::Built
                }
                (source, _) => {
                    if !docker.image_exists(&reference).await? {
                        let doing = match source {
                            ImageSource::Build(_) => "building",
                            ImageSource::Image(_) => "pulling",
                        };
                        eprintln!("{doing} {reference}");
                    }
                    let bar = PullBar::new(&reference);
                    docker
                        .ensure_image_with(source, policy, &mut progress, &mut |p| bar.show(p))
                        .await?
                }
            };
            match status {
                ImageStatus::Built => println!("built   {reference}"),
                ImageStatus::Present => println!("present {reference}"),
                ImageStatus::Pulled(pulled) => println!("pulled  {reference} ({})", pulled.digest),
            }
        }
    }
    Ok(ExitStatus::Success)
}

async fn gc(run: Option<String>, all: bool) -> Result<ExitStatus, ExpectedError> {
    let docker = Docker::connect().await?;
    let scope = match (run, all) {
        (Some(id), _) => SweepScope::Run(id),
        (None, true) => SweepScope::AllButLive,
        (None, false) => SweepScope::Dead,
    };
    // Faults first, while their containers and networks still exist.
    let recovered = match state_dir() {
        Some(state) => {
            crate::stack::recover_ledgers(&docker, &faults::ledger_dir(&state), &scope).await
        }
        None => Vec::new(),
    };
    let failed = recovered
        .iter()
        .filter(|r| matches!(r.outcome, faults::RecoveryOutcome::Failed(_)))
        .count();
    println!("reverted {} fault(s) left in force", recovered.len() - failed);
    for recovered in &recovered {
        println!("  {recovered}");
    }
    // Swarm services first (their tasks' containers go with them), the swarm itself last.
    let swarm = crate::stack::swarm::sweep_swarm(docker.client(), &scope).await;
    let report = docker.sweep(scope).await?;
    let left = crate::stack::swarm::leave_if_idle(docker.client(), None).await;
    let swarm = swarm.map_err(|e| ExpectedError::from(crate::engine::EngineError::from(e)))?;
    // Swarm's part has its own count: the line below counts containers and networks only.
    if !swarm.containers.is_empty() || !swarm.networks.is_empty() {
        println!(
            "removed {} Swarm service(s) and {} overlay network(s)",
            swarm.containers.len(),
            swarm.networks.len()
        );
    }
    for name in swarm.containers.iter().chain(&swarm.networks) {
        println!("  {name}");
    }
    if left.map_err(|e| ExpectedError::from(crate::engine::EngineError::from(e)))? {
        println!("left the swarm firedrill had initialised");
    }
    println!(
        "removed {} container(s), {} network(s) and {} volume(s)",
        report.containers.len(),
        report.networks.len(),
        report.volumes.len()
    );
    for name in report.containers.iter().chain(&report.networks).chain(&report.volumes) {
        println!("  {name}");
    }
    Ok(ExitStatus::Success)
}
