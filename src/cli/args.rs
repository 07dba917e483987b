//! Command-line arguments (clap derive).

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use super::annotate::Format;
use super::history::{GateOptions, HistoryArgs, RecordOptions, TrendArgs};
use super::plan::PlanFormat;
use crate::scenario::model::PullPolicy;

/// `run --backend`: where the stack runs (which [`Backend`](crate::backend::Backend)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendKind {
    /// The Docker engine, one container per service.
    Docker,
    /// Docker Swarm services (`crate::stack::swarm`).
    Swarm,
    /// The in-memory fake backend (`crate::backend::fake`).
    Fake,
}

impl BackendKind {
    /// The backend a scenario runs on: `--backend` when given, else its `backend:`, else Docker.
    pub fn resolve(
        flag: Option<BackendKind>,
        scenario: Option<crate::scenario::model::BackendChoice>,
    ) -> BackendKind {
        use crate::scenario::model::BackendChoice;
        match (flag, scenario) {
            (Some(kind), _) => kind,
            (None, Some(BackendChoice::Swarm)) => BackendKind::Swarm,
            (None, Some(BackendChoice::Docker) | None) => BackendKind::Docker,
        }
    }
}

fn parse_pull(text: &str) -> Result<PullPolicy, String> {
    text.parse()
}

/// Rehearse upgrades and outages of a containerised stack before they happen for real.
#[derive(Debug, Parser)]
#[command(name = "firedrill", version, about, propagate_version = true)]
pub struct Args {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate, bring up the stack, run the timeline, check, report, tear down.
    ///
    /// Exit codes: 0 every check held, 1 a check failed (or the regression gate did), 2 invalid
    /// input or environment error, 130 interrupted.
    Run {
        /// Write `journal.jsonl` (streamed during the run), `report.json`, `junit.xml`,
        /// `summary.md` and `report.html` into this folder. With several files, each scenario's
        /// journal and `report.json` go into `DIR/<scenario>/`; the other three cover them all.
        #[arg(long, value_name = "DIR")]
        report: Option<PathBuf>,
        /// Leave the stack up after the run for debugging; remove it later with
        /// `firedrill gc --run ID`.
        #[arg(long)]
        keep: bool,
        /// Seed of the run's random choices (which containers a fault hits); random when not
        /// given. The seed is printed and recorded in the journal and `report.json`: give it
        /// again to replay the same choices.
        #[arg(long, value_name = "N")]
        seed: Option<u64>,
        /// Run each scenario N times in a row, each on a fresh stack with the same seed, and
        /// report per check in how many runs it passed and which runs differed (stdout,
        /// `DIR/stability.json`, the top of `DIR/summary.md`). Each run's journal and
        /// `report.json` go into `DIR/run-K/` (`DIR/<scenario>/run-K/` with several files).
        /// Exit 1 unless every check passed in every run.
        #[arg(long, value_name = "N", default_value_t = 1, conflicts_with = "keep",
              value_parser = clap::value_parser!(u32).range(1..=1000))]
        repeat: u32,
        /// When images are pulled from their registry, for every service (overrides their
        /// `pull:`): `missing` (pull what is not local), `always`, or `never` (offline: every
        /// image must be local).
        #[arg(long, value_name = "POLICY", value_parser = parse_pull)]
        pull: Option<PullPolicy>,
        /// Fail (exit 1) a scenario with no `expect:` entries: nothing was checked.
        #[arg(long)]
        strict: bool,
        /// How many containers bring-up creates at once: services whose dependencies are ready
        /// start side by side, each gated on its own health (default: 4 per core, 4 to 32).
        #[arg(long, short = 'j', value_name = "N",
              value_parser = clap::value_parser!(u16).range(1..=256))]
        jobs: Option<u16>,
        /// Where the stack runs: `docker` (the engine `DOCKER_HOST` names, one container per
        /// service), `swarm` (Swarm services on that engine, a swarm manager; a single-node swarm
        /// is initialised for the run when the engine is in none, and left afterwards) or `fake`
        /// (in memory, no Docker: every service ready 50 ms after its start, `200` on every
        /// path, its image's tag as version; a demo of the engine, not of your services).
        /// Default: the scenario's `backend:`, else `docker`.
        #[arg(long, value_name = "BACKEND", value_enum)]
        backend: Option<BackendKind>,
        /// `text`, `github` (also a workflow command per failed check, on its `expect:` entry's
        /// line) or `json` (the failed checks as one document on stdout; the summary moves to
        /// stderr).
        #[arg(long, value_enum, default_value_t = Format::Text, value_name = "FORMAT")]
        format: Format,
        /// Gameday: a responders file (YAML: per role, a delay and what the scripted person does)
        /// that answers the scenario's `human` steps. Without it, human steps are answered at
        /// the terminal (Enter acknowledges the oldest open prompt); in CI (`CI=true` or no
        /// terminal on stdin) a scenario with human steps is refused unless `--gameday` serves the
        /// console.
        #[arg(long, value_name = "FILE")]
        responders: Option<PathBuf>,
        /// Gameday: serve the live console, a web page on 127.0.0.1 (random port, a random token
        /// in the printed URL): the timeline, the open prompts with their countdowns, buttons to
        /// acknowledge or to decide to roll back, what each sink received. Accepted without a
        /// terminal and in CI (the console is where people answer); the terminal still answers
        /// when stdin is one.
        #[arg(long, conflicts_with = "responders")]
        gameday: bool,
        /// Recording the run in the history.
        #[command(flatten)]
        history: RecordOptions,
        /// The regression gate.
        #[command(flatten)]
        gate: GateOptions,
        /// Scenario files.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// Render the reports again from a report folder's journals: `report.json`, `junit.xml`,
    /// `summary.md` and `report.html`.
    ///
    /// Works on an interrupted or crashed run's partial journal, or on a CI artifact. The checks
    /// are judged again from the expectations the journal carries. Exit 0 rendered, 2 error.
    Report {
        /// The folder given to `firedrill run --report`.
        #[arg(value_name = "DIR")]
        dir: PathBuf,
        /// Importing the runs into the history (a run killed before it could record itself).
        #[command(flatten)]
        history: RecordOptions,
    },
    /// List the recorded runs: when, which scenario, status, checks, versions, commit.
    /// Exit 0, 2 when the history cannot be read.
    History(HistoryArgs),
    /// Each key figure over the recorded runs (first, latest, best, worst, regressions), and
    /// with `--html FILE` a page with one plot per figure. Exit 0, 2 when the history cannot be
    /// read.
    Trend(TrendArgs),
    /// Check scenario files and report every mistake with its position. Exit 0 valid, 2 invalid.
    Validate {
        /// `text` (rendered diagnostics on stderr), `json` (one document on stdout) or `github`
        /// (workflow commands on stdout, so a pull request shows each mistake on its line).
        #[arg(long, value_enum, default_value_t = Format::Text, value_name = "FORMAT")]
        format: Format,
        /// Scenario files.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// Show what a run would do, without creating anything: images to build or pull (and which
    /// are present), bring-up order with health gates, the timeline with each step's earliest
    /// start (and calendar time), ledgered faults, sinks, links, traffic, and what each `expect:`
    /// entry judges. Needs no Docker engine (image presence is then `unknown`). Exit 0 valid, 2
    /// invalid.
    Plan {
        /// `text` or `json` (one document on stdout).
        #[arg(long, value_enum, default_value_t = PlanFormat::Text, value_name = "FORMAT")]
        format: PlanFormat,
        /// Scenario files.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// Print the JSON Schema (draft 2020-12) of the scenario format, for editors:
    /// `firedrill schema > firedrill.schema.json`, then `# yaml-language-server: $schema=firedrill.schema.json`
    /// at the top of a scenario. Generated from the key table validation reads.
    Schema,
    /// Print a shell completion script: `firedrill completions bash > /etc/bash_completion.d/firedrill`,
    /// `firedrill completions zsh > "${fpath[1]}/_firedrill"`,
    /// `firedrill completions fish > ~/.config/fish/completions/firedrill.fish`.
    Completions {
        /// The shell.
        #[arg(value_enum, value_name = "SHELL")]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff): `firedrill man > firedrill.1; man ./firedrill.1`.
    Man,
    /// Release gate: may a deployment happen now (or at `--at`) under a maintenance policy?
    ///
    /// Exit 0 when the time is inside a window of every customer, off every blackout day, and
    /// (when the policy requires a notice) a notice went out at least the lead time before on
    /// every required channel; 1 otherwise, with the next allowed time in your zone (`TZ`) and
    /// in each customer's; 2 for bad input.
    Gate {
        /// A YAML file with a `maintenance` section (a scenario file works too).
        #[arg(long, value_name = "FILE")]
        policy: PathBuf,
        /// The deployment time (default: now): RFC 3339 (`2026-12-05T21:00:00Z`) or a local time
        /// and zone (`2026-12-05T22:00 Europe/Berlin`).
        #[arg(long, value_name = "TIME")]
        at: Option<String>,
        /// The notices sent: a YAML list of `{ sent: TIME, channels: [email, status] }`.
        #[arg(long, value_name = "FILE")]
        notices: Option<PathBuf>,
    },
    /// Build every image the scenarios need, locally, skipping the ones that exist.
    Images {
        /// Rebuild images that exist already.
        #[arg(long)]
        rebuild: bool,
        /// Pull every registry image the scenarios run, present or not (to fill a CI cache);
        /// without it, each service's `pull:` applies (by default: pull what is missing).
        #[arg(long)]
        pull: bool,
        /// Scenario files (default: every `*.yaml` in `scenarios/`).
        #[arg(value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// Write a starter scenario for a compose stack that runs and passes as written, with one
    /// commented example of each step family. Exit 0 written, 2 invalid compose input.
    Init {
        /// The compose file; repeat to merge several, in order, like `docker compose -f`.
        #[arg(long = "compose", required = true, value_name = "FILE")]
        compose: Vec<PathBuf>,
        /// Where to write the scenario (default `firedrill.yaml` beside the first compose file);
        /// an existing file is never overwritten.
        #[arg(long, value_name = "SCENARIO")]
        output: Option<PathBuf>,
        /// A compose profile to enable; repeat for several.
        #[arg(long = "profile", value_name = "NAME")]
        profiles: Vec<String>,
    },
    /// Search the scenario's `explore:` space for a fault schedule that fails a check, and shrink
    /// it to the smallest that still fails the same check.
    ///
    /// Each case is one real rehearsal (stack brought up fresh). Writes `DIR/minimal.yaml` (an
    /// ordinary scenario `firedrill run` replays), `DIR/cases.jsonl`, `DIR/index.html` and
    /// `DIR/cases/NNNN/`. Exit codes: 0 nothing failed within the budget, 1 a failing schedule
    /// found, 2 invalid input or environment error, 130 interrupted (what was found is written).
    Explore(super::explore::ExploreArgs),
    /// Revert the faults dead runs left in force (from their ledgers), then remove the containers
    /// and networks they left behind.
    Gc {
        /// Remove this run (for example one left up with `--keep`), whatever its state.
        #[arg(long, value_name = "ID", conflicts_with = "all")]
        run: Option<String>,
        /// Also remove kept stacks of runs whose process is gone.
        #[arg(long)]
        all: bool,
    },
}
