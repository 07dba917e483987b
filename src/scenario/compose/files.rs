//! The compose files of one stack as one virtual text: each file is parsed on its own and its
//! spans are shifted by where it starts in the virtual text, so a merged tree can hold nodes of
//! several files and every problem still finds its file, line and column.

use std::sync::Arc;

use miette::{NamedSource, SourceSpan};

use crate::scenario::Diagnostic;
use crate::scenario::report::{LineIndex, Problem, Problems, Span};
use crate::scenario::tree::{self, Node, Value};

/// One compose file.
pub(super) struct SourceFile {
    /// The path as shown in messages.
    pub name: String,
    /// Its text.
    pub text: Arc<str>,
    /// Where it starts in the virtual text.
    pub base: usize,
    lines: LineIndex,
}

/// Every file of the stack, laid end to end.
#[derive(Default)]
pub(super) struct Sources {
    /// The files, in `-f` order.
    pub files: Vec<SourceFile>,
    /// The concatenation (one `\n` between files), what the reader's `head()` looks into.
    pub virtual_text: String,
}

impl Sources {
    /// Add a file; returns its root node (spans shifted) or the problems that make it unreadable
    /// (spans shifted too).
    pub fn add(&mut self, name: String, text: String) -> Result<Option<Node>, Vec<Problem>> {
        let base = self.virtual_text.len();
        self.virtual_text.push_str(&text);
        self.virtual_text.push('\n');
        let parsed = tree::parse(&text);
        let lines = LineIndex::new(&text);
        self.files.push(SourceFile { name, text: Arc::from(text), base, lines });
        match parsed {
            Ok(root) => Ok(root.map(|mut node| {
                shift(&mut node, base);
                node
            })),
            Err(problems) => Err(problems
                .into_list()
                .into_iter()
                .map(|mut problem| {
                    problem.span = Span::new(problem.span.start + base, problem.span.end + base);
                    problem
                })
                .collect()),
        }
    }

    /// The file a virtual offset falls in.
    fn file_of(&self, offset: usize) -> Option<&SourceFile> {
        self.files.iter().rev().find(|file| file.base <= offset)
    }

    /// `FILE:LINE:COL` of a virtual span, for warnings.
    pub fn position(&self, span: Span) -> String {
        match self.file_of(span.start) {
            Some(file) => {
                let local = (span.start - file.base).min(file.text.len());
                let (line, column) = file.lines.position(&file.text, local);
                format!("{}:{line}:{column}", file.name)
            }
            None => "?".to_owned(),
        }
    }

    /// Problems (virtual spans) as diagnostics against their own files, in file then source
    /// order.
    pub fn diagnostics(&self, problems: Problems) -> Vec<Diagnostic> {
        let mut list = problems.into_list();
        list.sort_by_key(|p| (p.span.start, p.span.end));
        list.dedup();
        list.into_iter()
            .filter_map(|problem| {
                let file = self.file_of(problem.span.start)?;
                let len = file.text.len();
                let start = (problem.span.start - file.base).min(len);
                let end = problem.span.end.saturating_sub(file.base).clamp(start, len);
                let (line, column) = file.lines.position(&file.text, start);
                Some(Diagnostic {
                    message: problem.message,
                    line,
                    column,
                    source_code: NamedSource::new(&file.name, file.text.clone()),
                    span: SourceSpan::new(start.into(), end - start),
                    label: problem.label,
                    help: problem.help,
                })
            })
            .collect()
    }
}

/// Move every span of a tree by `by` bytes.
fn shift(node: &mut Node, by: usize) {
    node.span = Span::new(node.span.start + by, node.span.end + by);
    match &mut node.value {
        Value::Scalar(scalar) => {
            if let Some(at) = &mut scalar.verbatim_at {
                *at += by;
            }
        }
        Value::Seq(items) => items.iter_mut().for_each(|item| shift(item, by)),
        Value::Map(entries) => {
            for entry in entries {
                shift(&mut entry.key, by);
                shift(&mut entry.value, by);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_find_their_file_line_and_column() {
        let mut sources = Sources::default();
        sources.add("a.yml".to_owned(), "x: 1\n".to_owned()).unwrap();
        let root = sources.add("b.yml".to_owned(), "y: 2\nz: 3\n".to_owned()).unwrap().unwrap();
        let Value::Map(entries) = &root.value else { panic!() };
        let mut problems = Problems::default();
        problems.error(entries[1].key.span, "bad z", "here");
        let diagnostics = sources.diagnostics(problems);
        assert_eq!((diagnostics[0].line, diagnostics[0].column), (2, 1));
        assert_eq!(diagnostics[0].source_code.name(), "b.yml");
        assert_eq!(sources.position(entries[0].value.span), "b.yml:1:4");
        let broken = sources.add("c.yml".to_owned(), "a: [1\n".to_owned()).unwrap_err();
        assert!(broken[0].span.start >= sources.files[2].base);
    }
}
