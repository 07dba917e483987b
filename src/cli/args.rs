//! Command-line arguments (clap derive).

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::scenario::model::PullPolicy;

/// `--backend`: which [`Backend`](crate::backend::Backend) runs the stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendChoice {
    /// The Docker engine, one container per service.
    Docker,
    /// Docker Swarm services (`crate::stack::swarm`).
    Swarm,
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
    /// Exit codes: 0 every check held, 1 a check failed, 2 invalid input or environment error,
    /// 130 interrupted.
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
        /// Where the stack runs: `docker` (the engine `DOCKER_HOST` names, one container per
        /// service) or `swarm` (Swarm services on that engine, a swarm manager; a single-node
        /// swarm is initialised for the run when the engine is in none, and left afterwards).
        #[arg(long, value_name = "BACKEND", default_value = "docker")]
        backend: BackendChoice,
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
    },
    /// Check scenario files and report every mistake with its position. Exit 0 valid, 2 invalid.
    Validate {
        /// Scenario files.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
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
