//! `firedrill explore FILE`: the search over the scenario's `explore:` space, each case a real
//! rehearsal; writes `DIR/minimal.yaml`, `DIR/cases.jsonl`, `DIR/exploration.json` and
//! `DIR/index.html`, prints progress on stderr and the outcome on stdout.

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::args::BackendKind;
use super::errors::{ExitStatus, ExpectedError};
use crate::engine::Signals;
use crate::explore::{self, CaseRecord, Phase, RehearsalRunner, Settings, Stop, Verdict};
use crate::scenario::{self, LoadError};

fn parse_budget(text: &str) -> Result<Duration, String> {
    scenario::parse_duration(text)
}

/// `firedrill explore` arguments.
#[derive(Debug, clap::Args)]
pub struct ExploreArgs {
    /// Schedules drawn at most before shrinking (the search phase).
    #[arg(long, value_name = "N", default_value_t = 20,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub runs: u32,
    /// Seed of the draws (and of each run's own random choices): the same seed draws the same
    /// cases. Random when not given; printed either way.
    #[arg(long, value_name = "S")]
    pub seed: Option<u64>,
    /// Wall-clock budget of the whole search, shrinking included (`30m`, `90s`). Checked between
    /// cases: a case that started runs to its end.
    #[arg(long, value_name = "DURATION", default_value = "30m", value_parser = parse_budget)]
    pub time_budget: Duration,
    /// Where to write the results (default `explore-<scenario>` here).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Extra runs of a failing shrink candidate before it is taken as smaller; one that passes a
    /// re-run is reported as flaky and not taken.
    #[arg(long, value_name = "K", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(0..=10))]
    pub reruns: u32,
    /// Where the stacks run: `docker`, `swarm` or `fake` (as `firedrill run --backend`).
    #[arg(long, value_name = "BACKEND", value_enum, default_value_t = BackendKind::Docker)]
    pub backend: BackendKind,
    /// The scenario file, with an `explore:` section.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
}

/// Run the search.
pub(super) async fn explore(
    args: ExploreArgs,
    color: bool,
    state_dir: Option<PathBuf>,
) -> Result<ExitStatus, ExpectedError> {
    let (scenario, space, source) = match scenario::load_with_space(&args.file) {
        Ok(loaded) => loaded,
        Err(LoadError::Invalid(invalid)) => {
            eprint!("{}", scenario::render(&invalid, color));
            return Ok(ExitStatus::Error);
        }
        Err(error) => return Err(error.into()),
    };
    let Some(space) = space else {
        eprintln!("error: `{}` has no `explore:` section: nothing to search", args.file.display());
        eprintln!(
            "hint: add `explore: {{ window: 0s..10s, faults: [ {{ pause: {{ services: [SERVICE], for: 1s..5s }} }} ] }}`"
        );
        return Ok(ExitStatus::Error);
    };
    let dir =
        args.out.clone().unwrap_or_else(|| PathBuf::from(format!("explore-{}", scenario.name)));
    prepare_dir(&dir)
        .map_err(|e| ExpectedError::Io(format!("cannot prepare `{}`: {e}", dir.display())))?;

    let backend: Arc<dyn crate::backend::Backend> = match args.backend {
        BackendKind::Docker => Arc::new(crate::stack::DockerBackend::connect().await?),
        BackendKind::Swarm => Arc::new(crate::stack::swarm::SwarmBackend::connect().await?),
        BackendKind::Fake => Arc::new(crate::backend::fake::FakeBackend::new()),
    };
    let seed = args.seed.unwrap_or_else(super::app::random_seed);
    eprintln!("seed: {seed} (draw the same cases again with --seed {seed})");
    eprintln!(
        "exploring `{}`: up to {} cases, budget {}, {} re-run(s) per failing candidate{}{}; results in `{}`",
        scenario.name,
        args.runs,
        scenario::format_duration(args.time_budget),
        args.reruns,
        if space.reuse_stack { ", one stack reused between cases" } else { "" },
        match (&space.at, space.from) {
            (Some((step, _)), from) if from != crate::scenario::model::StepMoment::Started => {
                format!(", fault starts (@) counted from `{step}` {}", from.name())
            }
            _ => String::new(),
        },
        dir.display()
    );

    let jsonl = fs_err::File::create(dir.join("cases.jsonl"))
        .map_err(|e| ExpectedError::Io(e.to_string()))?;
    let jsonl = Arc::new(Mutex::new(jsonl));
    let on_record = {
        let jsonl = jsonl.clone();
        move |record: &CaseRecord| {
            if let Ok(line) = serde_json::to_string(record) {
                let mut file = jsonl.lock().expect("no panic while writing");
                let _ = writeln!(file, "{line}");
                let _ = file.flush();
            }
            eprintln!("{}", progress_line(record));
        }
    };
    let signals = Signals::default();
    let watcher = tokio::spawn(super::app::watch_signals(signals.clone()));
    let folder = match args.file.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut runner = RehearsalRunner {
        source,
        folder,
        space: space.clone(),
        dir: dir.clone(),
        backend,
        signals: signals.clone(),
        seed,
        state_dir,
        on_record: Box::new(on_record),
        keeper: space
            .reuse_stack
            .then(|| Arc::new(tokio::sync::Mutex::new(crate::engine::StackKeeper::default()))),
    };
    let settings =
        Settings { runs: args.runs as usize, seed, budget: args.time_budget, reruns: args.reruns };
    let exploration = explore::explore(&space, &settings, &mut runner).await;
    // The kept stack goes before anything is written, Ctrl-C included.
    runner.close().await;
    watcher.abort();

    // Written on every path, Ctrl-C included: what was found so far.
    if let Some(found) = &exploration.found {
        match runner.text(&found.minimal) {
            Ok(text) => write(&dir.join("minimal.yaml"), &text)?,
            Err(error) => eprintln!("error: cannot write minimal.yaml: {error}"),
        }
    }
    let json = serde_json::to_string_pretty(&exploration).expect("serialisable");
    write(&dir.join("exploration.json"), &json)?;
    write(
        &dir.join("index.html"),
        &explore::page::render(&scenario.name, &space, &exploration, seed),
    )?;

    let coverage = &exploration.coverage;
    let covered = format!(
        "{} case(s) run; fault kinds touched {}/{}, (kind, target) pairs {}/{}",
        coverage.cases,
        coverage.kinds_touched,
        coverage.kinds_total,
        coverage.pairs_touched,
        coverage.pairs_total
    );
    if let Some(found) = &exploration.found {
        println!("FAILING SCHEDULE: check `{}` fails", found.check);
        println!("  found:   {}", found.first.label());
        println!(
            "  minimal: {}  ({} shrinking step(s), {} candidate(s){})",
            found.minimal.label(),
            found.shrink_steps,
            found.candidates,
            if found.complete { "" } else { "; shrinking stopped early" }
        );
        if !found.flaky.is_empty() {
            println!(
                "  flaky:   {} candidate(s) failed only sometimes and were not taken",
                found.flaky.len()
            );
            for schedule in &found.flaky {
                println!("    {}", schedule.label());
            }
        }
        println!("  {covered}");
        println!("  replay:  firedrill run {} --seed {seed}", dir.join("minimal.yaml").display());
    } else {
        match &exploration.stop {
            Stop::Aborted(_) => {}
            Stop::Interrupted => println!("interrupted: no failing schedule so far; {covered}"),
            Stop::Budget => println!("no failing schedule within the time budget; {covered}"),
            Stop::Done => println!("no failing schedule in {} case(s); {covered}", coverage.cases),
        }
    }
    eprintln!("report: {}", dir.join("index.html").display());
    Ok(match &exploration.stop {
        Stop::Interrupted => ExitStatus::Interrupted,
        Stop::Aborted(error) => {
            eprintln!("error: the first case could not run: {error}");
            eprintln!(
                "hint: `firedrill run {}` shows the same problem",
                dir.join("cases/0001/scenario.yaml").display()
            );
            ExitStatus::Error
        }
        _ if exploration.found.is_some() => ExitStatus::CheckFailed,
        _ => ExitStatus::Success,
    })
}

/// Create `dir`; a folder of an earlier search (it has `cases.jsonl`) loses its old cases.
fn prepare_dir(dir: &std::path::Path) -> std::io::Result<()> {
    if dir.join("cases.jsonl").is_file() {
        for old in ["cases.jsonl", "minimal.yaml", "exploration.json", "index.html"] {
            let _ = fs_err::remove_file(dir.join(old));
        }
        if dir.join("cases").is_dir() {
            fs_err::remove_dir_all(dir.join("cases"))?;
        }
    }
    fs_err::create_dir_all(dir.join("cases"))
}

fn write(path: &std::path::Path, text: &str) -> Result<(), ExpectedError> {
    fs_err::write(path, text).map_err(|e| ExpectedError::Io(e.to_string()))
}

fn progress_line(record: &CaseRecord) -> String {
    let phase = match record.phase {
        Phase::Search => "search",
        Phase::Shrink => "shrink",
    };
    let verdict = match &record.verdict {
        Verdict::Held => "held".to_owned(),
        Verdict::Failed { checks } => format!("FAILED {}", checks.join(", ")),
        Verdict::Aborted { error } => {
            format!("aborted: {}", error.lines().next().unwrap_or_default())
        }
        Verdict::Interrupted => "interrupted".to_owned(),
    };
    let mut notes = String::new();
    if record.attempt > 0 {
        notes.push_str(&format!(" (re-run {})", record.attempt));
    }
    if record.flaky {
        notes.push_str(" [flaky]");
    }
    if record.accepted {
        notes.push_str(" [smaller]");
    }
    format!(
        "case {:>3} {phase}: {} → {verdict} in {:.1}s{notes}",
        record.case,
        record.schedule.label(),
        record.duration_ms as f64 / 1000.0
    )
}
