//! Writing every report of a set of runs, each reporter on its own: a reporter that fails (a
//! file that cannot be written, or a rendering bug) is logged and reported back, and the others
//! are still written.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use super::html::render_html;
use super::json::{ReportError, write_json};
use super::junit::render_junit;
use super::markdown::render_markdown;
use super::record::RunRecord;
use super::stability::{Stability, render_stability_markdown};

/// What to write besides the report folder.
#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    /// Append `summary.md` to this file too (GitHub's `$GITHUB_STEP_SUMMARY`, which the CLI reads).
    pub step_summary: Option<PathBuf>,
    /// Runs repeated with `--repeat`: write `stability.json` and open `summary.md` with the
    /// stability section.
    pub stability: Option<Stability>,
}

/// What [`write_all`] did.
#[derive(Debug, Default)]
pub struct Written {
    /// Files written, in order.
    pub files: Vec<PathBuf>,
    /// Reporters that failed (each already logged).
    pub failures: Vec<ReportError>,
}

/// Write every report of `runs`: each run's `report.json` into its own folder, then
/// `DIR/junit.xml`, `DIR/summary.md` and `DIR/report.html` covering all of them (and
/// `DIR/stability.json` when `options.stability` is given), and append the summary to
/// `options.step_summary` when given. Never stops at a failing reporter.
pub fn write_all(dir: &Path, runs: &[RunRecord], options: &WriteOptions) -> Written {
    let mut written = Written::default();
    let mut outcome = |result: Result<PathBuf, ReportError>| match result {
        Ok(path) => written.files.push(path),
        Err(error) => {
            tracing::warn!(error = %error, "a report could not be written; the others still are");
            written.failures.push(error);
        }
    };
    for run in runs {
        outcome(write_json(&run.report, &run.dir));
    }
    let created = fs_err::create_dir_all(dir)
        .map_err(|source| ReportError::Write { path: dir.to_owned(), source });
    if let Err(error) = created {
        outcome(Err(error));
        return written;
    }
    outcome(render("junit.xml", || render_junit(runs)).and_then(|t| put(dir, "junit.xml", &t)));
    if let Some(stability) = &options.stability {
        let json = render("stability.json", || {
            serde_json::to_string_pretty(stability).expect("stability serialises") + "\n"
        });
        outcome(json.and_then(|t| put(dir, "stability.json", &t)));
    }
    let markdown = render("summary.md", || {
        let stability = options.stability.as_ref().map(render_stability_markdown);
        stability.unwrap_or_default() + &render_markdown(runs)
    });
    outcome(markdown.as_ref().map_err(clone_error).and_then(|t| put(dir, "summary.md", t)));
    outcome(render("report.html", || render_html(runs)).and_then(|t| put(dir, "report.html", &t)));
    if let (Some(path), Ok(markdown)) = (&options.step_summary, &markdown) {
        outcome(append(path, markdown));
    }
    written
}

/// Run a renderer, turning a panic (a bug) into an error so the other reports still get written.
fn render(report: &'static str, renderer: impl FnOnce() -> String) -> Result<String, ReportError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(renderer)).map_err(|panic| {
        let message = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "panicked".into());
        ReportError::Render { report, message }
    })
}

fn clone_error(error: &ReportError) -> ReportError {
    match error {
        ReportError::Render { report, message } => {
            ReportError::Render { report, message: message.clone() }
        }
        ReportError::Write { path, source } => ReportError::Write {
            path: path.clone(),
            source: std::io::Error::new(source.kind(), source.to_string()),
        },
    }
}

fn put(dir: &Path, name: &str, text: &str) -> Result<PathBuf, ReportError> {
    let path = dir.join(name);
    fs_err::write(&path, text)
        .map_err(|source| ReportError::Write { path: path.clone(), source })?;
    Ok(path)
}

fn append(path: &Path, text: &str) -> Result<PathBuf, ReportError> {
    let write = || -> std::io::Result<()> {
        let mut file = fs_err::OpenOptions::new().create(true).append(true).open(path)?;
        file.write_all(text.as_bytes())?;
        file.write_all(b"\n")
    };
    write().map_err(|source| ReportError::Write { path: path.to_owned(), source })?;
    Ok(path.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixtures;

    #[test]
    fn writes_every_report_and_appends_the_step_summary() {
        let dir = tempfile::tempdir().unwrap();
        let mut run = fixtures::deviated();
        run.dir = dir.path().to_owned();
        let step_summary = dir.path().join("step-summary.md");
        fs_err::write(&step_summary, "earlier step\n").unwrap();
        let options = WriteOptions { step_summary: Some(step_summary.clone()), stability: None };
        let written = write_all(dir.path(), &[run], &options);
        assert!(written.failures.is_empty(), "{:?}", written.failures);
        let names: Vec<String> = written
            .files
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            ["report.json", "junit.xml", "summary.md", "report.html", "step-summary.md"]
        );
        let appended = fs_err::read_to_string(&step_summary).unwrap();
        let summary = fs_err::read_to_string(dir.path().join("summary.md")).unwrap();
        assert_eq!(appended, format!("earlier step\n{summary}\n"));
    }

    #[test]
    fn repeated_runs_get_stability_json_and_a_stability_section_on_top_of_the_summary() {
        let dir = tempfile::tempdir().unwrap();
        let mut runs = [fixtures::completed(), fixtures::deviated()];
        for (i, run) in runs.iter_mut().enumerate() {
            run.dir = dir.path().join(format!("run-{}", i + 1));
            run.report.scenario.name = "db-pause".into();
        }
        let reports: Vec<_> = runs.iter().map(|r| &r.report).collect();
        let stability = crate::report::stability(&reports);
        let options = WriteOptions { step_summary: None, stability: Some(stability.clone()) };
        let written = write_all(dir.path(), &runs, &options);
        assert!(written.failures.is_empty(), "{:?}", written.failures);
        assert!(dir.path().join("run-1/report.json").is_file());
        assert!(dir.path().join("run-2/report.json").is_file());
        let json = fs_err::read_to_string(dir.path().join("stability.json")).unwrap();
        assert_eq!(serde_json::from_str::<Stability>(&json).unwrap(), stability);
        let summary = fs_err::read_to_string(dir.path().join("summary.md")).unwrap();
        assert!(
            summary.starts_with("## ❌ Stability of `db-pause`: NOT STABLE over 2 runs"),
            "{summary}"
        );
    }

    #[test]
    fn a_failing_reporter_does_not_stop_the_others() {
        let dir = tempfile::tempdir().unwrap();
        let mut run = fixtures::completed();
        // The run's folder is a file: report.json fails, the combined reports do not.
        let blocked = dir.path().join("blocked");
        fs_err::write(&blocked, "").unwrap();
        run.dir = blocked;
        let written = write_all(dir.path(), &[run], &WriteOptions::default());
        assert_eq!(written.failures.len(), 1, "{:?}", written.failures);
        assert!(written.failures[0].to_string().contains("blocked"));
        assert_eq!(written.files.len(), 3);
        assert!(dir.path().join("report.html").is_file());
    }

    #[test]
    fn a_panicking_renderer_is_an_error() {
        let error = render("report.html", || panic!("bug")).unwrap_err();
        assert_eq!(error.to_string(), "failed to render report.html: bug");
    }
}
