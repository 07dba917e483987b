//! YAML text → a tree of nodes where every mapping key and value keeps its byte span.
//!
//! Built from `granit-parser` events (the parser under serde-saphyr, reached through its
//! re-export, so the versions always agree). A tree instead of serde structs because a derive stops
//! at the first type error, while validation must report every mistake; and because the tree keeps
//! each scalar's exact text (`1.0` stays `1.0`) and whether it was quoted.
//!
//! Only YAML itself is judged here: syntax errors, duplicate keys, several documents. What the keys
//! mean is `validate`'s business.

use std::collections::HashMap;

use serde_saphyr::granit_parser::{Event, Marker, Options, Parser, ScalarStyle, StructureStyle};

use super::report::{LineIndex, Problems, Span};

/// A YAML node with its span.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    /// Bytes the node covers (a quoted scalar includes its quotes).
    pub span: Span,
    /// The content.
    pub value: Value,
}

/// What a node holds.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    /// A scalar.
    Scalar(Scalar),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, entries in source order.
    Map(Vec<Entry>),
}

/// A scalar's text and how it was written.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Scalar {
    /// The value after escapes and folding.
    pub text: String,
    /// How it was written.
    pub style: Style,
    /// Where the text starts in the source when it is copied verbatim between the quotes (no
    /// escapes, no folding), so that positions inside the string can be pointed at.
    pub verbatim_at: Option<usize>,
}

/// How a scalar was written: only plain scalars can be numbers, booleans or null.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Style {
    /// Unquoted.
    Plain,
    /// Quoted, a block scalar, or tagged `!!str`.
    Quoted,
}

/// One `key: value` of a mapping.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Entry {
    /// The key node.
    pub key: Node,
    /// The value node.
    pub value: Node,
}

/// What a scalar means under the YAML 1.2 core schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ScalarKind {
    /// `~`, `null` or nothing.
    Null,
    /// `true` / `false`.
    Bool,
    /// An integer.
    Int,
    /// A float.
    Float,
    /// Anything else.
    String,
}

impl Scalar {
    /// The core-schema type of this scalar.
    pub fn kind(&self) -> ScalarKind {
        if self.style == Style::Quoted {
            return ScalarKind::String;
        }
        let text = self.text.as_str();
        match text {
            "" | "~" | "null" | "Null" | "NULL" => ScalarKind::Null,
            "true" | "True" | "TRUE" | "false" | "False" | "FALSE" => ScalarKind::Bool,
            ".inf" | ".Inf" | ".INF" | "+.inf" | "-.inf" | "+.Inf" | "-.Inf" | ".nan" | ".NaN"
            | ".NAN" => ScalarKind::Float,
            _ if is_int(text) => ScalarKind::Int,
            _ if is_float(text) => ScalarKind::Float,
            _ => ScalarKind::String,
        }
    }
}

fn is_int(text: &str) -> bool {
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    if let Some(hex) = text.strip_prefix("0x") {
        return !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit());
    }
    if let Some(octal) = text.strip_prefix("0o") {
        return !octal.is_empty() && octal.bytes().all(|b| (b'0'..=b'7').contains(&b));
    }
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

fn is_float(text: &str) -> bool {
    let body = text.strip_prefix(['-', '+']).unwrap_or(text);
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let digits = mantissa.bytes().filter(u8::is_ascii_digit).count();
    let dots = mantissa.bytes().filter(|&b| b == b'.').count();
    let mantissa_ok = digits > 0 && dots <= 1 && digits + dots == mantissa.len();
    let exponent_ok =
        exponent.is_none_or(|e| is_int(e) && !e.starts_with("0x") && !e.starts_with("0o"));
    mantissa_ok && exponent_ok
}

impl Node {
    /// The scalar, if this is one.
    pub fn scalar(&self) -> Option<&Scalar> {
        match &self.value {
            Value::Scalar(scalar) => Some(scalar),
            _ => None,
        }
    }

    /// "a string", "a list", ...: what this node is, for "expected X, found Y".
    pub fn describe(&self) -> &'static str {
        match &self.value {
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
            Value::Scalar(scalar) => match scalar.kind() {
                ScalarKind::Null => "an empty value",
                ScalarKind::Bool => "a boolean",
                ScalarKind::Int => "a number",
                ScalarKind::Float => "a decimal number",
                ScalarKind::String => "a string",
            },
        }
    }
}

/// Parse `source` into its one document's root node (`None` for an empty document), or the
/// problems that make it unreadable: a syntax error (alone), duplicate keys, a second document.
pub(crate) fn parse(source: &str) -> Result<Option<Node>, Problems> {
    let mut options = Options::default();
    options.set_emit_comments(false);
    let mut builder = Builder {
        source,
        lines: LineIndex::new(source),
        stack: Vec::new(),
        anchors: HashMap::new(),
        expanded: 0,
        documents: 0,
        root: None,
        problems: Problems::default(),
    };
    for item in Parser::new_from_str_with_options(source, options) {
        match item {
            Ok((event, span)) => {
                let span = builder.span(span.start, span.end);
                if builder.event(event, span).is_break() {
                    break;
                }
            }
            Err(error) => {
                let at = builder.offset(error.marker());
                let mut problems = Problems::default();
                let kind = error.kind().to_string();
                let kind = kind.strip_suffix('.').unwrap_or(&kind);
                let help = match builder.open_flow() {
                    Some((bracket, start))
                        if builder.lines.line(start) < builder.lines.line(at) =>
                    {
                        format!("is the `{bracket}` on line {} closed?", builder.lines.line(start))
                    }
                    _ => "check the indentation and quoting around this point".to_owned(),
                };
                problems
                    .error(Span::new(at, at), format!("invalid YAML: {kind}"), "here")
                    .help(help);
                return Err(problems);
            }
        }
    }
    if builder.problems.is_empty() { Ok(builder.root) } else { Err(builder.problems) }
}

/// Alias expansion budget: enough for any real scenario, far from a "billion laughs" document.
const MAX_EXPANDED_NODES: usize = 100_000;

/// Number of nodes in a tree.
fn size(node: &Node) -> usize {
    match &node.value {
        Value::Scalar(_) => 1,
        Value::Seq(items) => 1 + items.iter().map(size).sum::<usize>(),
        Value::Map(entries) => {
            1 + entries.iter().map(|e| size(&e.key) + size(&e.value)).sum::<usize>()
        }
    }
}

/// Apply YAML merge keys: `<<: *base` (or `<<: [*a, *b]`) adds the entries of the merged
/// mappings whose keys the mapping does not set itself; the first merged mapping wins.
fn merge(entries: Vec<Entry>) -> Vec<Entry> {
    let is_merge = |entry: &Entry| {
        entry.key.scalar().is_some_and(|k| k.style == Style::Plain && k.text == "<<")
    };
    if !entries.iter().any(is_merge) {
        return entries;
    }
    let (merges, mut own): (Vec<Entry>, Vec<Entry>) = entries.into_iter().partition(is_merge);
    let mut sources = Vec::new();
    for entry in merges {
        match entry.value.value {
            Value::Map(map) => sources.push(map),
            Value::Seq(items) => {
                for item in items {
                    match item.value {
                        Value::Map(map) => sources.push(map),
                        value => own.push(Entry {
                            key: entry.key.clone(),
                            value: Node { span: item.span, value },
                        }),
                    }
                }
            }
            // Not a mapping: keep it, so that the walk reports `<<` as an unknown key.
            value => {
                own.push(Entry { key: entry.key, value: Node { span: entry.value.span, value } })
            }
        }
    }
    for source in sources {
        for entry in source {
            let key = entry.key.scalar().map(|k| k.text.as_str());
            if !own.iter().any(|e| e.key.scalar().map(|k| k.text.as_str()) == key) {
                own.push(entry);
            }
        }
    }
    own
}

struct Builder<'a> {
    source: &'a str,
    lines: LineIndex,
    stack: Vec<Frame>,
    anchors: HashMap<usize, Node>,
    expanded: usize,
    documents: usize,
    root: Option<Node>,
    problems: Problems,
}

enum Frame {
    Seq { start: usize, flow: bool, anchor: usize, items: Vec<Node> },
    Map { start: usize, flow: bool, anchor: usize, entries: Vec<Entry>, key: Option<Node> },
}

impl Builder<'_> {
    fn offset(&self, marker: &Marker) -> usize {
        marker.byte_offset().unwrap_or_else(|| {
            self.lines.offset(self.source, marker.line().saturating_sub(1), marker.col())
        })
    }

    fn span(&self, start: Marker, end: Marker) -> Span {
        Span::new(self.offset(&start), self.offset(&end))
    }

    fn event(&mut self, event: Event<'_>, span: Span) -> std::ops::ControlFlow<()> {
        match event {
            Event::DocumentStart(..) => {
                self.documents += 1;
                if self.documents > 1 {
                    self.problems
                        .error(
                            span,
                            "a scenario file holds one YAML document",
                            "a second document starts here",
                        )
                        .help("put each scenario in its own file");
                    return std::ops::ControlFlow::Break(());
                }
            }
            Event::Scalar(text, style, anchor, tag) => {
                let tagged_str = tag.as_deref().is_some_and(|t| t.is_yaml_core_schema_tag("str"));
                let quoted = matches!(style, ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted);
                let inner = if quoted {
                    Span::new(span.start + 1, span.end.saturating_sub(1))
                } else {
                    span
                };
                let verbatim = matches!(
                    style,
                    ScalarStyle::Plain | ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted
                ) && self.source.get(inner.start..inner.end) == Some(text.as_ref());
                let scalar = Scalar {
                    text: text.into_owned(),
                    style: if style == ScalarStyle::Plain && !tagged_str {
                        Style::Plain
                    } else {
                        Style::Quoted
                    },
                    verbatim_at: verbatim.then_some(inner.start),
                };
                self.node(Node { span, value: Value::Scalar(scalar) }, anchor);
            }
            Event::SequenceStart(style, anchor, _) => {
                let flow = style == StructureStyle::Flow;
                self.stack.push(Frame::Seq { start: span.start, flow, anchor, items: Vec::new() });
            }
            Event::MappingStart(style, anchor, _) => {
                let flow = style == StructureStyle::Flow;
                self.stack.push(Frame::Map {
                    start: span.start,
                    flow,
                    anchor,
                    entries: Vec::new(),
                    key: None,
                });
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let frame = self.stack.pop().expect("the parser balances collections");
                let (node, anchor) = match frame {
                    Frame::Seq { start, anchor, items, .. } => (
                        Node { span: Span::new(start, span.end), value: Value::Seq(items) },
                        anchor,
                    ),
                    Frame::Map { start, anchor, entries, .. } => {
                        self.check_duplicates(&entries);
                        let entries = merge(entries);
                        (
                            Node { span: Span::new(start, span.end), value: Value::Map(entries) },
                            anchor,
                        )
                    }
                };
                self.node(node, anchor);
            }
            Event::Alias(id) => {
                let Some(node) = self.anchors.get(&id) else {
                    // The parser only resolves aliases to earlier anchors, so a missing one is
                    // still open: the alias sits inside the node it names.
                    self.problems
                        .error(
                            span,
                            "an alias cannot refer to a node that contains it",
                            "recursive alias",
                        )
                        .help("move the alias out of the anchored node");
                    return std::ops::ControlFlow::Break(());
                };
                self.expanded += size(node);
                if self.expanded > MAX_EXPANDED_NODES {
                    self.problems
                        .error(span, "aliases expand to too many nodes", "too many expansions")
                        .help(format!(
                            "a scenario expands to at most {MAX_EXPANDED_NODES} nodes through aliases"
                        ));
                    return std::ops::ControlFlow::Break(());
                }
                let node = node.clone();
                self.node(node, 0);
            }
            _ => {}
        }
        std::ops::ControlFlow::Continue(())
    }

    /// The innermost open flow collection (`[` or `{`) and where it starts: a syntax error inside
    /// one is often a missing closing bracket.
    fn open_flow(&self) -> Option<(char, usize)> {
        self.stack.iter().rev().find_map(|frame| match frame {
            Frame::Seq { start, flow: true, .. } => Some(('[', *start)),
            Frame::Map { start, flow: true, .. } => Some(('{', *start)),
            _ => None,
        })
    }

    fn node(&mut self, node: Node, anchor: usize) {
        if anchor != 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            None => self.root = Some(node),
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map { entries, key, .. }) => match key.take() {
                None => *key = Some(node),
                Some(key) => entries.push(Entry { key, value: node }),
            },
        }
    }

    fn check_duplicates(&mut self, entries: &[Entry]) {
        let mut seen: HashMap<&str, Span> = HashMap::new();
        for entry in entries {
            let Some(key) = entry.key.scalar() else { continue };
            if let Some(first) = seen.get(key.text.as_str()) {
                let line = self.lines.line(first.start);
                self.problems
                    .error(
                        entry.key.span,
                        format!("duplicate key `{}`", key.text),
                        "defined again here",
                    )
                    .help(format!("`{}` is first defined on line {line}; keep one", key.text));
            } else {
                seen.insert(&key.text, entry.key.span);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root(source: &str) -> Node {
        parse(source).expect("valid YAML").expect("a document")
    }

    fn entries(node: &Node) -> &[Entry] {
        match &node.value {
            Value::Map(entries) => entries,
            other => panic!("not a mapping: {other:?}"),
        }
    }

    #[test]
    fn keeps_spans_of_keys_and_values() {
        let source = "name: smoke\nports: [5432, \"80\"]\n";
        let node = root(source);
        let map = entries(&node);
        assert_eq!(&source[map[0].key.span.start..map[0].key.span.end], "name");
        assert_eq!(&source[map[0].value.span.start..map[0].value.span.end], "smoke");
        let Value::Seq(ports) = &map[1].value.value else { panic!() };
        assert_eq!(ports[0].scalar().unwrap().kind(), ScalarKind::Int);
        assert_eq!(ports[1].scalar().unwrap().kind(), ScalarKind::String);
        assert_eq!(&source[ports[1].span.start..ports[1].span.end], "\"80\"");
        assert_eq!(ports[1].scalar().unwrap().verbatim_at, Some(ports[1].span.start + 1));
    }

    #[test]
    fn scalar_kinds_follow_the_core_schema() {
        let kind = |text: &str| {
            Scalar { text: text.into(), style: Style::Plain, verbatim_at: None }.kind()
        };
        assert_eq!(kind(""), ScalarKind::Null);
        assert_eq!(kind("~"), ScalarKind::Null);
        assert_eq!(kind("true"), ScalarKind::Bool);
        assert_eq!(kind("yes"), ScalarKind::String);
        assert_eq!(kind("-12"), ScalarKind::Int);
        assert_eq!(kind("0x1F"), ScalarKind::Int);
        assert_eq!(kind("1.0"), ScalarKind::Float);
        assert_eq!(kind("1e3"), ScalarKind::Float);
        assert_eq!(kind("1.2.3"), ScalarKind::String);
        assert_eq!(kind("5s"), ScalarKind::String);
        assert_eq!(kind("."), ScalarKind::String);
    }

    #[test]
    fn keeps_exact_text_of_numbers() {
        let node = root("VERSION: 1.10\n");
        assert_eq!(entries(&node)[0].value.scalar().unwrap().text, "1.10");
    }

    #[test]
    fn resolves_aliases() {
        let node = root("a: &x [1, 2]\nb: *x\n");
        assert_eq!(entries(&node)[1].value.value, entries(&node)[0].value.value);
    }

    #[test]
    fn merges_mappings_without_overriding() {
        let node = root("a: &a { x: 1, y: 2 }\nb: { <<: *a, y: 3 }\n");
        let Value::Map(b) = &entries(&node)[1].value.value else { panic!() };
        let pairs: Vec<_> = b
            .iter()
            .map(|e| {
                (e.key.scalar().unwrap().text.as_str(), e.value.scalar().unwrap().text.as_str())
            })
            .collect();
        assert_eq!(pairs, [("y", "3"), ("x", "1")]);
    }

    #[test]
    fn recursive_aliases_are_errors() {
        let source = "a: &x [1, *x]\n";
        let invalid = parse(source).unwrap_err().into_invalid(source, "f.yaml");
        assert_eq!(
            invalid.diagnostics[0].message,
            "an alias cannot refer to a node that contains it"
        );
    }

    #[test]
    fn alias_bombs_are_stopped() {
        let mut source = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for level in 1..8 {
            let refs = vec![format!("*a{}", level - 1); 10].join(", ");
            source.push_str(&format!("a{level}: &a{level} [{refs}]\n"));
        }
        let invalid = parse(&source).unwrap_err().into_invalid(&source, "f.yaml");
        assert_eq!(invalid.diagnostics[0].message, "aliases expand to too many nodes");
    }

    #[test]
    fn reports_duplicate_keys_at_the_second() {
        let source = "a: 1\nb: 2\na: 3\n";
        let problems = parse(source).unwrap_err();
        let invalid = problems.into_invalid(source, "f.yaml");
        assert_eq!(invalid.diagnostics.len(), 1);
        let d = &invalid.diagnostics[0];
        assert_eq!((d.message.as_str(), d.line, d.column), ("duplicate key `a`", 3, 1));
        assert_eq!(d.help.as_deref(), Some("`a` is first defined on line 1; keep one"));
    }

    #[test]
    fn reports_syntax_errors_with_position() {
        let source = "name: x\nstack:\n  services: [a\n";
        let invalid = parse(source).unwrap_err().into_invalid(source, "f.yaml");
        assert_eq!(invalid.diagnostics.len(), 1);
        assert!(
            invalid.diagnostics[0].message.starts_with("invalid YAML: "),
            "{:?}",
            invalid.diagnostics[0]
        );
    }

    #[test]
    fn unclosed_brackets_are_hinted() {
        let source = "a: [1, 2\nb: 3\n";
        let invalid = parse(source).unwrap_err().into_invalid(source, "f.yaml");
        assert_eq!(invalid.diagnostics[0].help.as_deref(), Some("is the `[` on line 1 closed?"));
    }

    #[test]
    fn rejects_a_second_document() {
        let source = "a: 1\n---\nb: 2\n";
        let invalid = parse(source).unwrap_err().into_invalid(source, "f.yaml");
        assert_eq!(invalid.diagnostics[0].line, 2);
    }

    #[test]
    fn empty_text_has_no_root() {
        assert_eq!(parse("").unwrap(), None);
        assert_eq!(parse("# only a comment\n").unwrap(), None);
    }
}
