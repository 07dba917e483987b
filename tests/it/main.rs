//! Integration tests: one binary, one module per area.
//!
//! **Every test here needs a Docker engine** (`DOCKER_HOST` or the default socket): they run the
//! CLI or the library end to end, or the Docker backend, against the real engine on this machine,
//! and none is `#[ignore]`d. Without Docker, `cargo test --workspace --lib` runs the unit tests
//! (validation, checks, reports, proxy, sinks, calendar); `validate` here also needs no engine.
//! The demo images are built once, locally, by `firedrill images`.
//!
//! Tests that judge verdicts drive `firedrill::Rehearsal` in-process
//! (`support::rehearse_in_process`) and read typed `Verdict`s and journal events; tests of what
//! the CLI itself does (exit codes, output, reports on disk, Ctrl-C, `--keep`, `--repeat`) run the
//! binary (`support::firedrill`, `support::rehearse`).

mod anchored;
mod blue_green;
mod clockskew;
mod compose;
mod concurrent;
mod console;
mod explore;
mod faults;
mod gameday;
mod history;
mod iolimit;
mod links;
mod netfaults;
mod notify;
mod plan;
mod prometheus;
mod pull;
mod report;
mod rolling;
mod run;
mod sinks;
mod stack;
mod support;
mod swarm;
mod truth_checks;
mod truth_traffic;
mod upgrade;
mod validate;
mod windows;
