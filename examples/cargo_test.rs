//! A rehearsal from Rust: what `firedrill run` does, driven from a program or from `cargo test`.
//!
//! `cargo run --example cargo_test [REPORT_DIR]` rehearses `tests/scenarios/webcache/smoke.yaml`
//! (nginx and Redis images built from `tests/stacks/webcache/` on first use) against the local
//! Docker engine and prints the summary the CLI prints. `cargo test --example cargo_test` runs the
//! same rehearsal as a test, the form to copy into your own `tests/`:
//!
//! ```text
//! #[tokio::test(flavor = "multi_thread")]
//! async fn the_stack_survives_a_killed_web_server() -> Result<(), firedrill::RehearsalError> {
//!     let outcome = firedrill::Rehearsal::from_file("tests/scenarios/webcache/smoke.yaml")?
//!         .seed(7)
//!         .report_dir("target/firedrill/webcache-smoke")
//!         .run()
//!         .await?;
//!     outcome.assert_held();
//!     Ok(())
//! }
//! ```
//!
//! `assert_held` panics with the CLI's summary (a `PASS`/`FAIL`/`SKIP` line per check, what
//! settled each failure, the run's error and hint) when a check did not pass or the run could not
//! finish. Both forms need a Docker engine; without one, `run` returns an error with a hint.

use std::path::PathBuf;
use std::process::ExitCode;

use firedrill::{Outcome, Rehearsal, RehearsalError};

/// The scenario, found from the crate root whatever the working directory.
fn scenario() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios/webcache/smoke.yaml")
}

async fn rehearse(report_dir: Option<PathBuf>) -> Result<Outcome, RehearsalError> {
    let mut rehearsal = Rehearsal::from_file(scenario())?.seed(7);
    if let Some(dir) = report_dir {
        rehearsal = rehearsal.report_dir(dir);
    }
    rehearsal.run().await
}

#[tokio::main]
async fn main() -> ExitCode {
    let report_dir = std::env::args_os().nth(1).map(PathBuf::from);
    match rehearse(report_dir).await {
        Ok(outcome) => {
            print!("{}", outcome.summary());
            for file in outcome.report_files() {
                eprintln!("report: {}", file.display());
            }
            if outcome.held() { ExitCode::SUCCESS } else { ExitCode::FAILURE }
        }
        Err(error) => {
            eprintln!("error: {error:?}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use firedrill::{CheckStatus, RunStatus};

    use super::*;

    #[tokio::test(flavor = "multi_thread")]
    async fn the_stack_survives_a_killed_web_server() -> Result<(), RehearsalError> {
        let dir = tempfile::tempdir().expect("tempdir");
        let outcome = rehearse(Some(dir.path().to_owned())).await?;
        outcome.assert_held();

        // Typed access to what the reports hold.
        assert_eq!(outcome.status(), RunStatus::Completed);
        let down = outcome
            .verdict(r#"unhealthy-during web during "web down""#)
            .expect("a verdict per expect entry, named as in the summary");
        assert_eq!(down.status, CheckStatus::Passed, "{}", down.observed);
        assert_eq!(outcome.seed(), Some(7));
        for report in ["report.json", "junit.xml", "summary.md", "report.html"] {
            assert!(dir.path().join(report).is_file(), "{report} is written");
        }
        Ok(())
    }
}
