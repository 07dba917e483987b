//! Gameday in the CLI: who answers the `human` steps of the scenarios about to run — a responders
//! file (`--responders FILE`), the live console (`--gameday`: a web page on 127.0.0.1, see
//! `console/`), or the person at the terminal (Enter acknowledges the oldest open prompt; a role
//! name acknowledges that role's; `roll back` takes the decision where a prompt offers it). In CI
//! (`CI=true`, or stdin not a terminal) a scenario with human steps and neither responders nor
//! the console is refused before anything starts: a run must never wait for a person who cannot
//! answer.

use std::io::{BufRead, IsTerminal};
use std::path::Path;
use std::sync::Arc;

use super::console::Console;
use crate::engine::gameday::{Desk, Gameday};

/// What the terminal takes.
const TERMINAL_HELP: &str = "Enter acknowledges the oldest open prompt, a role name and Enter \
     that role's, `roll back` and Enter decides to roll back where a prompt offers it";
use crate::scenario::gameday::{human_steps, unanswered};
use crate::scenario::{self, LoadError, Scenario};

/// Why the run cannot start, already printed.
pub(super) struct Refused;

/// The gameday of this invocation (`--responders FILE`, `--gameday`), or `Refused` after printing
/// why.
pub(super) async fn prepare(
    scenarios: &[Scenario],
    (responders, console): (Option<&Path>, bool),
    color: bool,
) -> Result<Gameday, Refused> {
    let with_humans: Vec<&Scenario> =
        scenarios.iter().filter(|s| !human_steps(s).is_empty()).collect();
    if let Some(path) = responders {
        let responders = match scenario::load_responders(path) {
            Ok(responders) => responders,
            Err(LoadError::Invalid(invalid)) => {
                eprint!("{}", scenario::render(&invalid, color));
                return Err(Refused);
            }
            Err(error) => {
                eprintln!("{}", super::errors::ExpectedError::from(error).render());
                return Err(Refused);
            }
        };
        let problems: Vec<String> =
            with_humans.iter().flat_map(|scenario| unanswered(scenario, &responders)).collect();
        for problem in &problems {
            eprintln!("error: {problem}");
        }
        if !problems.is_empty() {
            return Err(Refused);
        }
        return Ok(Gameday { responders: Some(Arc::new(responders)), desk: None });
    }
    let tty = std::io::stdin().is_terminal();
    if console {
        let desk = Desk::default();
        let steps = scenarios.iter().map(|s| (s.name.clone(), s.all_steps().len())).collect();
        match Console::start(desk.clone(), steps).await {
            Ok(url) => eprintln!("gameday console: {url}"),
            Err(error) => {
                eprintln!(
                    "error: failed to serve the gameday console on 127.0.0.1: {error}\n  \
                     hint: run without --gameday and answer at the terminal, or with \
                     --responders FILE"
                );
                return Err(Refused);
            }
        }
        if tty {
            terminal(desk.clone());
            eprintln!("gameday: the terminal answers too ({TERMINAL_HELP})");
        }
        return Ok(Gameday { responders: None, desk: Some(desk) });
    }
    if with_humans.is_empty() {
        return Ok(Gameday::default());
    }
    let ci = std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1");
    if ci || !tty {
        let why = if ci { "CI=true" } else { "stdin is not a terminal" };
        for scenario in &with_humans {
            let steps: Vec<String> = human_steps(scenario)
                .iter()
                .map(|(step, human)| format!("`{}` ({})", step.name, human.role))
                .collect();
            eprintln!(
                "error: `{}` ({}) has human steps {} and nobody can answer them here ({why})\n  \
                 hint: pass --responders FILE with a scripted response per role, or --gameday \
                 to answer in the console (README, \"Gameday: rehearsing the people\")",
                scenario.name,
                scenario.source.display(),
                steps.join(", "),
            );
        }
        return Err(Refused);
    }
    let desk = Desk::default();
    terminal(desk.clone());
    eprintln!("gameday: prompts appear below; {TERMINAL_HELP}");
    Ok(Gameday { responders: None, desk: Some(desk) })
}

/// Read stdin lines on a thread of their own (a blocking read; it ends with the process) and
/// acknowledge at the desk.
fn terminal(desk: Desk) {
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { return };
            let line = line.trim();
            if line == "roll back" {
                match desk.roll_back_oldest("terminal") {
                    Some(step) => eprintln!("gameday: decided to roll back at `{step}`"),
                    None => eprintln!("gameday: no open prompt offers to roll back"),
                }
                continue;
            }
            let role = Some(line).filter(|r| !r.is_empty());
            match desk.acknowledge_oldest(role, "terminal") {
                Some(step) => eprintln!("gameday: acknowledged `{step}`"),
                None => eprintln!(
                    "gameday: no open prompt{}",
                    role.map(|r| format!(" for `{r}`")).unwrap_or_default()
                ),
            }
        }
    });
}
