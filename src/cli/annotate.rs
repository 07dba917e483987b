//! Machine-readable results for CI: scenario diagnostics and failed checks as GitHub workflow
//! commands (`::error file=…,line=…,col=…::message`) or as one JSON document.
//!
//! Pure formatting: it takes diagnostics and verdicts and returns text; `validate.rs` and `app.rs`
//! print it.

use serde::Serialize;

use crate::checks::{CheckStatus, Verdict};
use crate::scenario::{Diagnostic, Scenario};

/// How `validate` and `run` print their results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// For people: rendered diagnostics on stderr, summaries on stdout.
    #[default]
    Text,
    /// One JSON document on stdout (`format-version` 1).
    Json,
    /// GitHub Actions workflow commands on stdout, so a pull request shows each mistake on its
    /// line; the text output goes on as usual.
    Github,
}

/// How serious an annotation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Level {
    /// A mistake or a failed check.
    Error,
    /// Worth a look, not a failure (a compose key ignored, a check not evaluated).
    Warning,
}

/// One message about a place in a file (or about a whole file when `line` is `None`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Annotation {
    /// `error` or `warning`.
    pub level: Level,
    /// The file, as given on the command line (or as a compose warning names it).
    pub file: String,
    /// 1-based line, when the message has a place.
    pub line: Option<usize>,
    /// 1-based column, in characters.
    pub column: Option<usize>,
    /// Last line of the marked text.
    pub end_line: Option<usize>,
    /// Column one past the marked text, on `end_line`.
    pub end_column: Option<usize>,
    /// A short title: the label at the span, or `check failed: NAME`.
    pub title: String,
    /// The message; may span several lines.
    pub message: String,
    /// A hint, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
}

impl Annotation {
    /// A scenario diagnostic, placed where miette would place it (its own file for a diagnostic
    /// of a compose file the scenario names).
    pub fn from_diagnostic(diagnostic: &Diagnostic) -> Self {
        let file = diagnostic.source_code.name().to_owned();
        let source: &str = diagnostic.source_code.inner();
        let start = diagnostic.span.offset().min(source.len());
        let end = (start + diagnostic.span.len()).min(source.len());
        // The diagnostic's own line and column are in its file; the end is counted from there.
        let marked = source.get(start..end).unwrap_or_default();
        let (end_line, end_column) = match marked.rfind('\n') {
            Some(newline) => (
                diagnostic.line + marked.matches('\n').count(),
                marked[newline + 1..].chars().count() + 1,
            ),
            None => (diagnostic.line, diagnostic.column + marked.chars().count()),
        };
        Annotation {
            level: Level::Error,
            file,
            line: Some(diagnostic.line),
            column: Some(diagnostic.column),
            end_line: Some(end_line),
            end_column: Some(end_column),
            title: diagnostic.label.clone(),
            message: diagnostic.message.clone(),
            help: diagnostic.help.clone(),
        }
    }

    /// A problem with a whole file (it cannot be read, the engine gave up on it).
    pub fn file(level: Level, file: &str, title: &str, message: String) -> Self {
        Annotation {
            level,
            file: file.to_owned(),
            line: None,
            column: None,
            end_line: None,
            end_column: None,
            title: title.to_owned(),
            message,
            help: None,
        }
    }

    /// A warning written as `FILE:LINE:COL: message` (compose warnings), placed when it parses.
    pub fn from_located_warning(warning: &str) -> Self {
        let placed = warning.split_once(": ").and_then(|(place, message)| {
            let mut parts = place.rsplitn(3, ':');
            let column = parts.next()?.parse().ok()?;
            let line = parts.next()?.parse().ok()?;
            let file = parts.next()?;
            Some((file, line, column, message))
        });
        match placed {
            Some((file, line, column, message)) => Annotation {
                level: Level::Warning,
                file: file.to_owned(),
                line: Some(line),
                column: Some(column),
                end_line: None,
                end_column: None,
                title: "compose".to_owned(),
                message: message.to_owned(),
                help: None,
            },
            None => Annotation::file(Level::Warning, "", "compose", warning.to_owned()),
        }
    }

    /// The annotation as one GitHub workflow command line (without the newline).
    ///
    /// Syntax: `::error file=F,line=L,endLine=E,col=C,endColumn=D,title=T::MESSAGE`. In the
    /// message `%`, CR and LF are escaped; in property values also `:` and `,`.
    pub fn github(&self) -> String {
        let command = match self.level {
            Level::Error => "error",
            Level::Warning => "warning",
        };
        let mut properties = Vec::new();
        if !self.file.is_empty() {
            properties.push(format!("file={}", escape_property(&self.file)));
        }
        let numbers = [
            ("line", self.line),
            ("endLine", self.end_line),
            ("col", self.column),
            ("endColumn", self.end_column),
        ];
        for (name, value) in numbers {
            if let (Some(value), Some(_)) = (value, self.line) {
                properties.push(format!("{name}={value}"));
            }
        }
        properties.push(format!("title={}", escape_property(&self.title)));
        let mut message = self.message.clone();
        if let Some(help) = &self.help {
            message.push_str("\nhint: ");
            message.push_str(help);
        }
        format!("::{command} {}::{}", properties.join(","), escape_data(&message))
    }
}

/// A message of a workflow command: `%`, CR and LF escaped (GitHub's `escapeData`).
pub fn escape_data(text: &str) -> String {
    text.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A")
}

/// A property value of a workflow command: as a message, plus `:` and `,` (GitHub's
/// `escapeProperty`).
pub fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

/// The annotations for a run's verdicts: an error per failed check and a warning per check that
/// could not be judged, each on its `expect:` entry's line when the check comes from one.
pub fn checks(scenario: &Scenario, verdicts: &[Verdict]) -> Vec<Annotation> {
    let file = scenario.source.display().to_string();
    verdicts
        .iter()
        .filter_map(|verdict| {
            let (level, what) = match verdict.status {
                CheckStatus::Passed => return None,
                CheckStatus::Failed => (Level::Error, "check failed"),
                CheckStatus::NotEvaluated => (Level::Warning, "check not evaluated"),
            };
            let at = scenario.expect.iter().find(|e| e.name == verdict.name).and_then(|e| e.at);
            let mut annotation = Annotation::file(
                level,
                &file,
                &format!("{what}: {}", verdict.name),
                format!(
                    "{}: {}\nexpected: {}\nobserved: {}",
                    verdict.name, verdict.summary, verdict.expected, verdict.observed
                ),
            );
            if let Some(at) = at {
                annotation.line = Some(at.line);
                annotation.column = Some(at.column);
            }
            Some(annotation)
        })
        .collect()
}

/// The JSON document of `--format json`: every file given and what was found in it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Document {
    /// 1 for this shape.
    pub format_version: u32,
    /// One entry per file given, in order.
    pub files: Vec<FileResult>,
}

/// What `validate` (or `run`) found in one file.
#[derive(Debug, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct FileResult {
    /// The file, as given.
    pub file: String,
    /// Whether it is a valid scenario (for `run`: whether every check passed).
    pub ok: bool,
    /// The scenario's `name`, when it was read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scenario: Option<String>,
    /// Errors and warnings, in source order.
    pub annotations: Vec<Annotation>,
}

impl Document {
    /// A document of `files`.
    pub fn new(files: Vec<FileResult>) -> Self {
        Document { format_version: 1, files }
    }

    /// Pretty JSON with a trailing newline.
    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).expect("annotations serialize");
        text.push('\n');
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_escape_percent_and_line_breaks() {
        assert_eq!(escape_data("100% up\r\nnext: a,b"), "100%25 up%0D%0Anext: a,b");
        // `%` first: an escape is not escaped twice.
        assert_eq!(escape_data("%0A"), "%250A");
    }

    #[test]
    fn properties_also_escape_colons_and_commas() {
        assert_eq!(escape_property("C:\\a,b\n%"), "C%3A\\a%2Cb%0A%25");
    }

    #[test]
    fn a_diagnostic_becomes_one_workflow_command() {
        let annotation = Annotation {
            level: Level::Error,
            file: "scenarios/a,b.yaml".into(),
            line: Some(12),
            column: Some(7),
            end_line: Some(12),
            end_column: Some(13),
            title: "unknown key".into(),
            message: "unknown key `imag` in service `db`".into(),
            help: Some("did you mean `image`?".into()),
        };
        assert_eq!(
            annotation.github(),
            "::error file=scenarios/a%2Cb.yaml,line=12,endLine=12,col=7,endColumn=13,\
             title=unknown key::unknown key `imag` in service `db`%0Ahint: did you mean `image`?"
        );
    }

    /// The documented shape: `::error file={name},line={line},endLine={endLine},title={title}::{message}`,
    /// properties `key=value` separated by commas, the message after the second `::`.
    #[test]
    fn every_command_parses_back_by_the_documented_syntax() {
        let tricky = Annotation {
            level: Level::Warning,
            file: "dir:x/s,1.yaml".into(),
            line: Some(3),
            column: Some(1),
            end_line: None,
            end_column: None,
            title: "check failed: slo web, p95: 1% off".into(),
            message: "a: b, c\n100%\r".into(),
            help: None,
        };
        let line = tricky.github();
        assert!(!line.contains('\n') && !line.contains('\r'));
        let rest = line.strip_prefix("::warning ").unwrap();
        let (properties, message) = rest.split_once("::").unwrap();
        let unescape = |text: &str| {
            text.replace("%3A", ":")
                .replace("%2C", ",")
                .replace("%0D", "\r")
                .replace("%0A", "\n")
                .replace("%25", "%")
        };
        let parsed: Vec<(&str, String)> = properties
            .split(',')
            .map(|p| {
                let (key, value) = p.split_once('=').unwrap();
                (key, unescape(value))
            })
            .collect();
        assert_eq!(
            parsed,
            [
                ("file", "dir:x/s,1.yaml".to_owned()),
                ("line", "3".to_owned()),
                ("col", "1".to_owned()),
                ("title", "check failed: slo web, p95: 1% off".to_owned()),
            ]
        );
        assert_eq!(unescape(message), "a: b, c\n100%\r");
    }

    #[test]
    fn a_file_level_annotation_has_no_position() {
        let annotation = Annotation::file(Level::Error, "s.yaml", "error", "gone".into());
        assert_eq!(annotation.github(), "::error file=s.yaml,title=error::gone");
    }

    #[test]
    fn diagnostics_keep_their_span() {
        let invalid = crate::scenario::parse(
            "name: t\nstack:\n  services:\n    db: { imag: x }\n",
            std::path::Path::new("dir/t.yaml"),
        )
        .unwrap_err();
        let annotations: Vec<_> =
            invalid.diagnostics.iter().map(Annotation::from_diagnostic).collect();
        let first = annotations.iter().find(|a| a.title == "unknown key").unwrap();
        assert_eq!(first.file, "dir/t.yaml");
        assert_eq!((first.line, first.column), (Some(4), Some(11)));
        assert_eq!((first.end_line, first.end_column), (Some(4), Some(15)));
        assert_eq!(first.message, "unknown key `imag` in service `db`");
    }

    #[test]
    fn compose_warnings_are_placed() {
        let annotation = Annotation::from_located_warning(
            "deploy/compose.yaml:14:5: `deploy` is ignored: firedrill runs one container",
        );
        assert_eq!(annotation.file, "deploy/compose.yaml");
        assert_eq!((annotation.line, annotation.column), (Some(14), Some(5)));
        assert_eq!(annotation.message, "`deploy` is ignored: firedrill runs one container");
        let loose = Annotation::from_located_warning("no place here");
        assert_eq!((loose.line, loose.message.as_str()), (None, "no place here"));
    }

    #[test]
    fn failed_checks_point_at_their_expect_entry() {
        let source = "name: t
stack:
  services:
    db: { image: p, ports: [5432], health: { tcp: { port: 5432, connect-is-enough: true } } }
steps:
  - wait: 1s
expect:
  - name: back
    healthy-within: { service: db, after: wait 1s, within: 5s }
  - healthy-throughout: { service: db, step: wait 1s }
";
        let scenario = crate::scenario::parse(source, std::path::Path::new("s.yaml")).unwrap();
        let verdict = |name: &str, status| Verdict {
            name: name.into(),
            kind: "x",
            status,
            summary: "went down".into(),
            expected: "healthy".into(),
            observed: "unhealthy at 1.2s".into(),
            evidence: Vec::new(),
            channels: Vec::new(),
        };
        let verdicts = [
            verdict(&scenario.expect[0].name, CheckStatus::Passed),
            verdict(&scenario.expect[1].name, CheckStatus::Failed),
            verdict("step `wait 1s` failed", CheckStatus::NotEvaluated),
        ];
        let annotations = checks(&scenario, &verdicts);
        assert_eq!(annotations.len(), 2);
        assert_eq!((annotations[0].line, annotations[0].column), (Some(10), Some(5)));
        assert_eq!(annotations[0].level, Level::Error);
        let line = annotations[0].github();
        assert!(
            line.starts_with(
                "::error file=s.yaml,line=10,col=5,title=check failed%3A healthy-throughout db"
            ),
            "{line}"
        );
        assert_eq!((annotations[1].line, annotations[1].level), (None, Level::Warning));
    }
}
