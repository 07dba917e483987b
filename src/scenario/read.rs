//! Typed reads from the node tree: "this is a mapping with these keys", "this is a port", "this is
//! a duration". Each read that fails records a problem at the node and returns `None`, so the walk
//! goes on and reports every mistake.
//!
//! Knows YAML shapes, not what a scenario means (that is `validate`).

use std::time::Duration;

use indexmap::IndexMap;

use super::keys::Section;
use super::report::{LineIndex, Problem, Problems, Span};
use super::suggest;
use super::tree::{Entry, Node, ScalarKind, Value};
use super::{duration, quantity};

/// Reads nodes and collects problems.
pub(crate) struct Reader<'s> {
    /// Everything found so far.
    pub problems: Problems,
    source: &'s str,
    lines: LineIndex,
    home: fn(&str) -> Option<&'static str>,
}

/// The known keys of one mapping, ready to be read.
pub(crate) struct Fields<'t> {
    /// Where "missing `x`" points: the key that owns the mapping, or the mapping's first line.
    pub at: Span,
    /// What the mapping is, for messages: "`build`", "service `db`", "the scenario".
    pub context: String,
    entries: Vec<(&'t str, &'t Entry)>,
}

impl<'t> Fields<'t> {
    /// The value of `key`, when present.
    pub fn get(&self, key: &str) -> Option<&'t Node> {
        self.entry(key).map(|entry| &entry.value)
    }

    /// The key and value of `key`, when present.
    pub fn entry(&self, key: &str) -> Option<&'t Entry> {
        self.entries.iter().find(|(name, _)| *name == key).map(|(_, entry)| *entry)
    }

    /// The keys present among `keys`, in source order.
    pub fn present(&self, keys: &[&str]) -> Vec<(&'t str, &'t Entry)> {
        self.entries.iter().filter(|(name, _)| keys.contains(name)).copied().collect()
    }
}

impl<'s> Reader<'s> {
    /// A reader over `source`. `home` says where a key belongs ("a service"), to hint at a key that
    /// is known but misplaced, usually by indentation.
    pub fn new(source: &'s str, home: fn(&str) -> Option<&'static str>) -> Self {
        Reader { problems: Problems::default(), source, lines: LineIndex::new(source), home }
    }

    /// Record a problem.
    pub fn error(
        &mut self,
        span: Span,
        message: impl Into<String>,
        label: impl Into<String>,
    ) -> &mut Problem {
        self.problems.error(span, message, label)
    }

    /// The problem recorded last, to add a hint to it.
    pub fn last(&mut self) -> &mut Problem {
        self.problems.last_mut().expect("a problem was just recorded")
    }

    /// The source text of a span, as written.
    pub fn slice(&self, span: Span) -> &'s str {
        self.source.get(span.start..span.end).unwrap_or_default()
    }

    /// 1-based line of a span, for hints such as "first used on line 12".
    pub fn line(&self, span: Span) -> usize {
        self.lines.line(span.start)
    }

    /// 1-based line and column of where a span starts.
    pub fn position(&self, span: Span) -> crate::scenario::model::Position {
        let (line, column) = self.lines.position(self.source, span.start);
        crate::scenario::model::Position { line, column }
    }

    /// The first line of a node: the whole of a scalar or a flow collection, the first line of a
    /// block collection (so labels stay on one line).
    pub fn head(&self, node: &Node) -> Span {
        let text = self.source.get(node.span.start..node.span.end).unwrap_or_default();
        let first = text.split('\n').next().unwrap_or_default().trim_end();
        if first.is_empty() {
            Span::new(node.span.start, node.span.start)
        } else {
            Span::new(node.span.start, node.span.start + first.len())
        }
    }

    /// Report that `node` is not what was expected: "expected a list of ports, found a string".
    pub fn wrong_type(&mut self, node: &Node, expected: &str) -> &mut Problem {
        let found = node.describe();
        let span = self.head(node);
        self.error(span, format!("expected {expected}, found {found}"), format!("this is {found}"))
    }

    /// Read a mapping whose keys must be among `section`'s (the one table in `keys.rs`, which the
    /// schema is generated from too); unknown keys are reported (with the closest
    /// known key when one is close), and so are keys that are not strings.
    pub fn fields<'t>(
        &mut self,
        node: &'t Node,
        at: Span,
        context: impl Into<String>,
        expected: &str,
        section: &Section,
    ) -> Option<Fields<'t>> {
        let context = context.into();
        let Value::Map(map) = &node.value else {
            self.wrong_type(node, expected);
            return None;
        };
        let mut entries = Vec::with_capacity(map.len());
        for entry in map {
            let Some(key) = entry.key.scalar().filter(|s| s.kind() != ScalarKind::Null) else {
                let span = self.head(&entry.key);
                self.error(
                    span,
                    format!("expected a key in {context}, found {}", entry.key.describe()),
                    "not a key",
                );
                continue;
            };
            if section.has(&key.text) {
                entries.push((key.text.as_str(), entry));
            } else {
                self.unknown_key(&key.text, entry.key.span, &context, &section.names());
            }
        }
        Some(Fields { at, context, entries })
    }

    /// Report an unknown key, suggesting the closest known one.
    pub fn unknown_key(&mut self, key: &str, span: Span, context: &str, keys: &[&str]) {
        let hint = match (suggest::closest(key, keys.iter().copied()), (self.home)(key)) {
            (Some(close), _) => format!("did you mean `{close}`?"),
            (None, Some(home)) => format!("`{key}` belongs in {home}; check the indentation"),
            (None, None) => format!("expected {}", suggest::list(keys.iter().copied())),
        };
        self.error(span, format!("unknown key `{key}` in {context}"), "unknown key").help(hint);
    }

    /// The value of a required key, or a "missing `key` in context" problem at the mapping.
    pub fn require<'t>(&mut self, fields: &Fields<'t>, key: &str) -> Option<&'t Node> {
        let value = fields.get(key);
        if value.is_none() {
            self.error(
                fields.at,
                format!("missing `{key}` in {}", fields.context),
                format!("needs `{key}`"),
            );
        }
        value
    }

    /// Any non-empty scalar, as its text: numbers and booleans keep how they were written.
    pub fn text(&mut self, node: &Node, expected: &str) -> Option<String> {
        match node.scalar() {
            Some(scalar) if scalar.kind() != ScalarKind::Null => Some(scalar.text.clone()),
            _ => {
                self.wrong_type(node, expected);
                None
            }
        }
    }

    /// Like [`Self::text`], but also rejects an empty string.
    pub fn non_empty_text(&mut self, node: &Node, expected: &str) -> Option<String> {
        let text = self.text(node, expected)?;
        if text.trim().is_empty() {
            self.error(node.span, format!("expected {expected}, found an empty string"), "empty");
            return None;
        }
        Some(text)
    }

    /// An integer in `range`.
    pub fn integer(
        &mut self,
        node: &Node,
        expected: &str,
        range: std::ops::RangeInclusive<i64>,
    ) -> Option<i64> {
        let Some(scalar) = node.scalar().filter(|s| s.kind() == ScalarKind::Int) else {
            self.wrong_type(node, expected);
            return None;
        };
        let Some(value) = parse_int(&scalar.text) else {
            let label = format!("expected {expected}");
            self.error(node.span, format!("{} is out of range", scalar.text), label);
            return None;
        };
        if !range.contains(&value) {
            self.error(
                node.span,
                format!("{value} is out of range"),
                format!("expected {expected}"),
            )
            .help(format!("use a number from {} to {}", range.start(), range.end()));
            return None;
        }
        Some(value)
    }

    /// A container port, 1 to 65535.
    pub fn port(&mut self, node: &Node) -> Option<u16> {
        self.integer(node, "a port number", 1..=65535)
            .map(|p| u16::try_from(p).expect("checked range"))
    }

    /// An HTTP status, 100 to 599.
    pub fn status(&mut self, node: &Node) -> Option<u16> {
        self.integer(node, "an HTTP status", 100..=599)
            .map(|p| u16::try_from(p).expect("checked range"))
    }

    /// A sequence's items.
    pub fn list<'t>(&mut self, node: &'t Node, expected: &str) -> Option<&'t [Node]> {
        match &node.value {
            Value::Seq(items) => Some(items),
            _ => {
                self.wrong_type(node, expected);
                None
            }
        }
    }

    /// A non-empty command line: a list of scalars.
    pub fn argv(&mut self, node: &Node, what: &str) -> Option<Vec<String>> {
        let items = self.list(node, &format!("a command as a list (`{what}: [program, arg]`)"))?;
        if items.is_empty() {
            self.error(node.span, format!("`{what}` is an empty command"), "empty")
                .help("name a program to run");
            return None;
        }
        let mut argv = Some(Vec::with_capacity(items.len()));
        for item in items {
            let arg = self.text(item, "a command-line argument");
            match (&mut argv, arg) {
                (Some(argv), Some(arg)) => argv.push(arg),
                _ => argv = None,
            }
        }
        argv
    }

    /// A positive duration such as `30s`.
    pub fn duration(&mut self, node: &Node) -> Option<Duration> {
        let Some(scalar) = node.scalar().filter(|s| s.kind() != ScalarKind::Null) else {
            self.wrong_type(node, "a duration such as `30s`");
            return None;
        };
        match duration::parse(&scalar.text) {
            Ok(duration) => Some(duration),
            Err(why) => {
                self.error(node.span, format!("invalid duration `{}`", scalar.text), why)
                    .help("use 250ms, 30s, 5m, 1h or a combination such as 1m30s");
                None
            }
        }
    }

    /// A request rate such as `20/s` or `600/m`, in requests per second.
    pub fn rate(&mut self, node: &Node) -> Option<f64> {
        let Some(scalar) = node.scalar().filter(|s| s.kind() != ScalarKind::Null) else {
            self.wrong_type(node, "a rate such as `20/s`").help("use 20/s or 600/m");
            return None;
        };
        match quantity::parse_rate(&scalar.text) {
            Ok(rate) => Some(rate),
            Err(why) => {
                self.error(node.span, format!("invalid rate `{}`", scalar.text), why)
                    .help("use 20/s or 600/m");
                None
            }
        }
    }

    /// A percentage from 0 to 100: `99%`, `99.5%` or a bare number.
    pub fn percent(&mut self, node: &Node) -> Option<f64> {
        let Some(scalar) = node.scalar().filter(|s| s.kind() != ScalarKind::Null) else {
            self.wrong_type(node, "a percentage such as `99.5%`")
                .help("use 99%, 99.5% or a number from 0 to 100");
            return None;
        };
        match quantity::parse_percent(&scalar.text) {
            Ok(percent) => Some(percent),
            Err(why) => {
                self.error(node.span, format!("invalid percentage `{}`", scalar.text), why)
                    .help("use 99%, 99.5% or a number from 0 to 100");
                None
            }
        }
    }

    /// A boolean: `true` or `false`.
    pub fn boolean(&mut self, node: &Node, expected: &str) -> Option<bool> {
        match node.scalar().filter(|s| s.kind() == ScalarKind::Bool) {
            Some(scalar) => Some(scalar.text.eq_ignore_ascii_case("true")),
            None => {
                self.wrong_type(node, expected);
                None
            }
        }
    }

    /// A mapping of names to scalar text (`env`, build `args`), with each value's node.
    pub fn string_map<'t>(
        &mut self,
        node: &'t Node,
        expected: &str,
    ) -> Option<IndexMap<String, (String, &'t Node)>> {
        let Value::Map(map) = &node.value else {
            self.wrong_type(node, expected);
            return None;
        };
        let mut out = Some(IndexMap::with_capacity(map.len()));
        for entry in map {
            let key = match entry.key.scalar() {
                Some(key) if !key.text.is_empty() && !key.text.contains('=') => {
                    Some(key.text.clone())
                }
                _ => {
                    let span = self.head(&entry.key);
                    self.error(span, "expected a variable name", "not a name")
                        .help("names are non-empty and have no `=`");
                    None
                }
            };
            let value = self.text(&entry.value, "a string (quote it if it is meant to be empty)");
            match (&mut out, key, value) {
                (Some(out), Some(key), Some(value)) => {
                    out.insert(key, (value, &entry.value));
                }
                _ => out = None,
            }
        }
        out
    }
}

fn parse_int(text: &str) -> Option<i64> {
    if let Some(hex) = text.strip_prefix("0x") {
        i64::from_str_radix(hex, 16).ok()
    } else if let Some(octal) = text.strip_prefix("0o") {
        i64::from_str_radix(octal, 8).ok()
    } else {
        text.parse().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::keys::test_section;
    use crate::scenario::tree;

    fn with<T>(source: &str, read: impl FnOnce(&mut Reader<'_>, &Node) -> T) -> (T, Vec<String>) {
        let root = tree::parse(source).unwrap().unwrap();
        let mut reader = Reader::new(source, |key| (key == "image").then_some("a service"));
        let out = read(&mut reader, &root);
        let messages = reader
            .problems
            .into_invalid(source, "t.yaml")
            .diagnostics
            .into_iter()
            .map(|d| d.message)
            .collect();
        (out, messages)
    }

    #[test]
    fn unknown_keys_get_suggestions() {
        let source = "prots: [1]\nvolumes: x\nimage: y\n";
        let root = tree::parse(source).unwrap().unwrap();
        let mut reader = Reader::new(source, |key| (key == "image").then_some("a service"));
        reader.fields(
            &root,
            Span::default(),
            "`stack`",
            "a mapping",
            test_section(&["ports", "services"]),
        );
        let found: Vec<_> = reader
            .problems
            .into_invalid(source, "t.yaml")
            .diagnostics
            .into_iter()
            .map(|d| (d.message, d.help.unwrap_or_default()))
            .collect();
        let expected = [
            ("unknown key `prots` in `stack`", "did you mean `ports`?"),
            ("unknown key `volumes` in `stack`", "expected `ports` or `services`"),
            (
                "unknown key `image` in `stack`",
                "`image` belongs in a service; check the indentation",
            ),
        ];
        assert_eq!(found, expected.map(|(m, h)| (m.to_owned(), h.to_owned())));
    }

    #[test]
    fn wrong_types_say_what_was_found() {
        let (port, messages) = with("p: eighty\n", |r, node| {
            let fields =
                r.fields(node, Span::default(), "x", "a mapping", test_section(&["p"])).unwrap();
            r.port(fields.get("p").unwrap())
        });
        assert_eq!(port, None);
        assert_eq!(messages, ["expected a port number, found a string"]);
    }

    #[test]
    fn text_keeps_numbers_as_written() {
        let (values, messages) = with("A: 1.0\nB: true\nC: \"\"\n", |r, node| {
            r.string_map(node, "a mapping")
                .unwrap()
                .into_iter()
                .map(|(k, (v, _))| (k, v))
                .collect::<Vec<_>>()
        });
        assert!(messages.is_empty());
        assert_eq!(
            values,
            [("A".into(), "1.0".into()), ("B".into(), "true".into()), ("C".into(), String::new())]
        );
    }

    #[test]
    fn ports_are_range_checked() {
        let (ports, messages) = with("[0, 65536, 80, 0x50]\n", |r, node| {
            let items = r.list(node, "a list").unwrap();
            items.iter().map(|item| r.port(item)).collect::<Vec<_>>()
        });
        assert_eq!(ports, [None, None, Some(80), Some(80)]);
        assert_eq!(messages, ["0 is out of range", "65536 is out of range"]);
    }

    #[test]
    fn bad_durations_name_the_text() {
        let (d, messages) = with("t: 5 seconds\n", |r, node| {
            let fields =
                r.fields(node, Span::default(), "x", "a mapping", test_section(&["t"])).unwrap();
            r.duration(fields.get("t").unwrap())
        });
        assert_eq!(d, None);
        assert_eq!(messages, ["invalid duration `5 seconds`"]);
    }
}
