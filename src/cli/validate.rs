//! `firedrill validate`: check scenario files and print every mistake, for people (rendered with
//! its source line), as GitHub workflow commands, or as JSON.

use std::path::PathBuf;

use super::annotate::{Annotation, Document, FileResult, Format, Level};
use super::errors::{ExitStatus, ExpectedError};
use crate::scenario::{self, LoadError};

/// Validate every file; exit 0 when all are valid, 2 otherwise.
pub(super) fn validate(files: &[PathBuf], format: Format, color: bool) -> ExitStatus {
    // GitHub's log is read by people too: the rendered diagnostics stay on stderr there.
    let human = format != Format::Json;
    let mut results = Vec::with_capacity(files.len());
    for file in files {
        let name = file.display().to_string();
        let result = match scenario::load(file) {
            Ok(scenario) => {
                let warnings: Vec<&String> =
                    scenario.stack.compose.iter().flat_map(|c| &c.warnings).collect();
                if format == Format::Text {
                    for warning in &warnings {
                        eprintln!("warning: {warning}");
                    }
                }
                if human {
                    println!(
                        "ok: {name} (`{}`: {} service(s), {} step(s), {} check(s))",
                        scenario.name,
                        scenario.stack.services.len(),
                        scenario.steps.len(),
                        scenario.expect.len()
                    );
                }
                FileResult {
                    file: name,
                    ok: true,
                    scenario: Some(scenario.name.clone()),
                    annotations: warnings
                        .iter()
                        .map(|w| Annotation::from_located_warning(w))
                        .collect(),
                }
            }
            Err(LoadError::Invalid(invalid)) => {
                if human {
                    eprint!("{}", scenario::render(&invalid, color));
                }
                FileResult {
                    file: name,
                    ok: false,
                    scenario: None,
                    annotations: invalid
                        .diagnostics
                        .iter()
                        .map(Annotation::from_diagnostic)
                        .collect(),
                }
            }
            Err(error) => {
                let error = ExpectedError::from(error);
                if human {
                    eprintln!("{}", error.render());
                }
                let mut annotation =
                    Annotation::file(Level::Error, &name, "cannot read", error.to_string());
                if let Some(source) = std::error::Error::source(&error) {
                    annotation.message.push_str(&format!(": {source}"));
                }
                FileResult { file: name, ok: false, scenario: None, annotations: vec![annotation] }
            }
        };
        results.push(result);
    }
    let ok = results.iter().all(|r| r.ok);
    match format {
        Format::Text => {}
        Format::Json => print!("{}", Document::new(results).to_json()),
        Format::Github => {
            for result in &results {
                for annotation in &result.annotations {
                    println!("{}", annotation.github());
                }
            }
        }
    }
    if ok { ExitStatus::Success } else { ExitStatus::Error }
}
