//! Problems found while reading a scenario, turned into [`Diagnostic`]s (line, column, named source)
//! and rendered with miette.
//!
//! Everything here is about presenting positions; nothing decides what is a mistake.

use std::fmt::Write as _;
use std::sync::Arc;

use miette::{GraphicalReportHandler, GraphicalTheme, NamedSource, SourceSpan};

use super::{Diagnostic, Invalid};

/// A byte range in the scenario text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Span {
    /// First byte.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
}

impl Span {
    /// The range `start..end`.
    pub fn new(start: usize, end: usize) -> Self {
        Span { start, end: end.max(start) }
    }
}

/// One mistake, before it has a line and column.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Problem {
    /// Where.
    pub span: Span,
    /// Lowercase message.
    pub message: String,
    /// Label at the span.
    pub label: String,
    /// Hint, when one helps.
    pub help: Option<String>,
}

/// Collects problems while the scenario is walked.
#[derive(Debug, Default)]
pub(crate) struct Problems {
    list: Vec<Problem>,
    /// Diagnostics already placed in another file (a compose file the scenario names).
    foreign: Vec<Diagnostic>,
}

impl Problems {
    /// Record a mistake; the returned problem can take a hint.
    pub fn error(
        &mut self,
        span: Span,
        message: impl Into<String>,
        label: impl Into<String>,
    ) -> &mut Problem {
        self.list.push(Problem { span, message: message.into(), label: label.into(), help: None });
        self.list.last_mut().expect("just pushed")
    }

    /// The problem recorded last, to add a hint to it.
    pub fn last_mut(&mut self) -> Option<&mut Problem> {
        self.list.last_mut()
    }

    /// Whether nothing was found.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty() && self.foreign.is_empty()
    }

    /// Add mistakes found in another file; they come first in the report.
    pub fn foreign(&mut self, diagnostics: Vec<Diagnostic>) {
        self.foreign.extend(diagnostics);
    }

    /// The problems recorded so far, unsorted (foreign ones are not included).
    pub fn into_list(self) -> Vec<Problem> {
        self.list
    }

    /// The problems, as diagnostics in source order.
    pub fn into_invalid(self, source: &str, file: &str) -> Invalid {
        let lines = LineIndex::new(source);
        let named = NamedSource::new(file, Arc::<str>::from(source));
        let mut problems = self.list;
        problems.sort_by_key(|p| (p.span.start, p.span.end));
        problems.dedup();
        let own = problems.into_iter().map(|problem| {
            let start = problem.span.start.min(source.len());
            let end = problem.span.end.clamp(start, source.len());
            let (line, column) = lines.position(source, start);
            Diagnostic {
                message: problem.message,
                line,
                column,
                source_code: named.clone(),
                span: SourceSpan::new(start.into(), end - start),
                label: problem.label,
                help: problem.help,
            }
        });
        let diagnostics = self.foreign.into_iter().chain(own).collect();
        Invalid { file: file.to_owned(), diagnostics }
    }
}

impl Problem {
    /// Attach a hint.
    pub fn help(&mut self, help: impl Into<String>) -> &mut Self {
        self.help = Some(help.into());
        self
    }
}

/// Byte offsets of line starts, to turn an offset into a 1-based line and column.
#[derive(Debug)]
pub(crate) struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    /// Index `source`.
    pub fn new(source: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(source.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { starts }
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn position(&self, source: &str, offset: usize) -> (usize, usize) {
        let line = self.starts.partition_point(|&start| start <= offset) - 1;
        let start = self.starts[line];
        let column = source.get(start..offset).map_or(offset - start, |text| text.chars().count());
        (line + 1, column + 1)
    }

    /// Byte offset of a 0-based line and a 0-based column in characters.
    pub fn offset(&self, source: &str, line: usize, column: usize) -> usize {
        let Some(&start) = self.starts.get(line) else { return source.len() };
        let rest = &source[start..];
        rest.char_indices().nth(column).map_or(source.len(), |(i, _)| start + i)
    }

    /// 1-based line of a byte offset.
    pub fn line(&self, offset: usize) -> usize {
        self.starts.partition_point(|&start| start <= offset)
    }
}

/// Render every diagnostic of `invalid` the way the CLI prints them, followed by a summary line
/// `error: <file>: N problem(s)`.
pub fn render(invalid: &Invalid, color: bool) -> String {
    let theme = if color { GraphicalTheme::unicode() } else { GraphicalTheme::unicode_nocolor() };
    let handler = GraphicalReportHandler::new_themed(theme).with_links(false).with_width(100);
    let mut out = String::new();
    for diagnostic in &invalid.diagnostics {
        handler.render_report(&mut out, diagnostic).expect("writing to a String cannot fail");
        out.push('\n');
    }
    let count = invalid.diagnostics.len();
    let noun = if count == 1 { "problem" } else { "problems" };
    writeln!(out, "error: {}: {count} {noun}", invalid.file)
        .expect("writing to a String cannot fail");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based_in_characters() {
        let source = "a: 1\nbé: ü2\n";
        let lines = LineIndex::new(source);
        assert_eq!(lines.position(source, 0), (1, 1));
        assert_eq!(lines.position(source, 5), (2, 1));
        let u = source.find('ü').unwrap();
        assert_eq!(lines.position(source, u), (2, 5));
        assert_eq!(lines.offset(source, 1, 4), u);
        assert_eq!(lines.line(u), 2);
    }

    #[test]
    fn diagnostics_come_out_in_source_order() {
        let mut problems = Problems::default();
        problems.error(Span::new(5, 6), "second", "b");
        problems.error(Span::new(0, 1), "first", "a").help("a hint");
        let invalid = problems.into_invalid("a: 1\nb: 2\n", "x.yaml");
        let messages: Vec<_> =
            invalid.diagnostics.iter().map(|d| (d.message.as_str(), d.line, d.column)).collect();
        assert_eq!(messages, vec![("first", 1, 1), ("second", 2, 1)]);
        assert_eq!(invalid.diagnostics[0].help.as_deref(), Some("a hint"));
    }

    #[test]
    fn renders_file_line_and_column() {
        let mut problems = Problems::default();
        problems.error(Span::new(5, 6), "unknown key `b`", "here");
        let text = render(&problems.into_invalid("a: 1\nb: 2\n", "dir/x.yaml"), false);
        assert!(text.contains("[dir/x.yaml:2:1]"), "{text}");
        assert!(text.ends_with("error: dir/x.yaml: 1 problem\n"), "{text}");
    }
}
