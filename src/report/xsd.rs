//! A small XML Schema interpreter, for tests only: it validates `junit.xml` against the real
//! Jenkins JUnit schema (`tests/fixtures/junit-10.xsd`) without an external tool.
//!
//! It reads the `.xsd` file itself and interprets the constructs that schema uses: top-level
//! `xs:element` declarations (with an inline `xs:complexType`, or `type="xs:…"` for simple
//! content), `xs:sequence` and `xs:choice` (nested, with `minOccurs`/`maxOccurs`, `unbounded`),
//! `xs:element ref=` particles, `mixed`, and `xs:attribute` with `use="required"` and a built-in
//! simple type (`xs:string`, `xs:boolean`, `xs:integer`, `xs:int`, `xs:decimal`). Any other
//! construct in the schema is an error when it is loaded, so a schema that grows beyond what is
//! interpreted fails the tests instead of being half-checked. XML well-formedness (matching end
//! tags, attribute syntax) is quick-xml's.
//!
//! Shared by the unit tests (`report::junit`) and the integration tests (`tests/it/report.rs`,
//! through `#[path]`); it is not part of the library.

use std::collections::{BTreeMap, BTreeSet};

use quick_xml::events::{BytesStart, Event};

/// How often a particle may occur.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Occurs {
    min: usize,
    /// `None`: unbounded.
    max: Option<usize>,
}

/// A content-model particle.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Particle {
    /// `<xs:element ref="NAME"/>`.
    Element(String, Occurs),
    /// `<xs:sequence>`.
    Sequence(Vec<Particle>, Occurs),
    /// `<xs:choice>`.
    Choice(Vec<Particle>, Occurs),
}

/// A built-in simple type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SimpleType {
    String,
    Boolean,
    Integer,
    Int,
    Decimal,
}

/// What an element may contain.
#[derive(Debug, Clone, PartialEq)]
enum ElementType {
    /// `type="xs:…"`: text of that type, no child element, no attribute.
    Simple(SimpleType),
    /// An inline `xs:complexType`.
    Complex {
        mixed: bool,
        /// `None`: no child element allowed.
        content: Option<Particle>,
        /// Name → (type, required).
        attributes: BTreeMap<String, (SimpleType, bool)>,
    },
}

/// A loaded schema: its top-level element declarations.
#[derive(Debug, Clone)]
pub struct Schema {
    elements: BTreeMap<String, ElementType>,
}

/// A node of the schema document (an `xs:` element with its attributes and children).
#[derive(Debug)]
struct Node {
    name: String,
    attributes: BTreeMap<String, String>,
    children: Vec<Node>,
    text: String,
    line: usize,
}

/// Parse an XML document into a tree of elements (comments, declarations and processing
/// instructions dropped; text and CDATA kept per element).
fn parse(xml: &str) -> Result<Node, String> {
    let mut reader = quick_xml::Reader::from_str(xml);
    let line_of = |offset: u64| xml[..(offset as usize).min(xml.len())].matches('\n').count() + 1;
    let mut stack: Vec<Node> = Vec::new();
    let mut root = None;
    loop {
        let position = reader.buffer_position();
        let event = reader.read_event().map_err(|error| {
            format!("line {}: not well-formed XML: {error}", line_of(reader.error_position()))
        })?;
        let open = |start: &BytesStart| -> Result<Node, String> {
            let mut attributes = BTreeMap::new();
            for attribute in start.attributes() {
                let attribute =
                    attribute.map_err(|e| format!("line {}: {e}", line_of(position)))?;
                let key = String::from_utf8_lossy(attribute.key.as_ref()).into_owned();
                let raw = String::from_utf8_lossy(&attribute.value).into_owned();
                let value = quick_xml::escape::unescape(&raw)
                    .map_err(|e| format!("line {}: attribute `{key}`: {e}", line_of(position)))?
                    .into_owned();
                if attributes.insert(key.clone(), value).is_some() {
                    return Err(format!("line {}: duplicate attribute `{key}`", line_of(position)));
                }
            }
            Ok(Node {
                name: String::from_utf8_lossy(start.name().as_ref()).into_owned(),
                attributes,
                children: Vec::new(),
                text: String::new(),
                line: line_of(position),
            })
        };
        let close =
            |node: Node, stack: &mut Vec<Node>, root: &mut Option<Node>| match stack.last_mut() {
                Some(parent) => parent.children.push(node),
                None if root.is_none() => *root = Some(node),
                None => {}
            };
        match event {
            Event::Start(start) => stack.push(open(&start)?),
            Event::Empty(start) => {
                let node = open(&start)?;
                close(node, &mut stack, &mut root);
            }
            Event::End(_) => {
                let node = stack.pop().expect("quick-xml checks end tags");
                close(node, &mut stack, &mut root);
            }
            Event::Text(text) => {
                let text = text.decode().map_err(|e| e.to_string())?;
                match stack.last_mut() {
                    Some(node) => node.text.push_str(&text),
                    None if text.trim().is_empty() => {}
                    None => {
                        return Err(format!("line {}: text outside the root", line_of(position)));
                    }
                }
            }
            Event::CData(data) => {
                if let Some(node) = stack.last_mut() {
                    node.text.push_str(&String::from_utf8_lossy(&data));
                }
            }
            Event::GeneralRef(reference) => {
                let name = reference.decode().map_err(|e| e.to_string())?;
                let resolved = quick_xml::escape::unescape(&format!("&{name};"))
                    .map_err(|e| format!("line {}: {e}", line_of(position)))?
                    .into_owned();
                if let Some(node) = stack.last_mut() {
                    node.text.push_str(&resolved);
                }
            }
            Event::Eof => break,
            Event::Comment(_) | Event::Decl(_) | Event::PI(_) | Event::DocType(_) => {}
        }
    }
    if let Some(open) = stack.last() {
        return Err(format!("line {}: `<{}>` is never closed", open.line, open.name));
    }
    root.ok_or_else(|| "no root element".to_owned())
}

impl Schema {
    /// Load a schema from its text; an XSD construct this interpreter does not know is an error.
    pub fn parse(xsd: &str) -> Result<Schema, String> {
        let root = parse(xsd)?;
        if root.name != "xs:schema" {
            return Err(format!("the root is `<{}>`, not `<xs:schema>`", root.name));
        }
        let mut elements = BTreeMap::new();
        for node in &root.children {
            expect_name(node, "xs:element")?;
            allow_attributes(node, &["name", "type"])?;
            let name = required(node, "name")?;
            let element = match (node.attributes.get("type"), &node.children[..]) {
                (Some(type_name), []) => ElementType::Simple(simple_type(type_name, node.line)?),
                (None, [complex]) => complex_type(complex)?,
                _ => {
                    return Err(format!(
                        "line {}: element `{name}` needs either `type` or one `xs:complexType`",
                        node.line
                    ));
                }
            };
            elements.insert(name.to_owned(), element);
        }
        for element in elements.values() {
            if let ElementType::Complex { content: Some(particle), .. } = element {
                for name in references(particle) {
                    if !elements.contains_key(name) {
                        return Err(format!("`ref=\"{name}\"` names no top-level element"));
                    }
                }
            }
        }
        Ok(Schema { elements })
    }

    /// Load a schema file.
    pub fn load(path: &std::path::Path) -> Result<Schema, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
        Schema::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Validate a document: every violation, each with its line.
    pub fn validate(&self, xml: &str) -> Result<(), Vec<String>> {
        let root = parse(xml).map_err(|e| vec![e])?;
        let mut errors = Vec::new();
        if self.elements.contains_key(&root.name) {
            self.check(&root, &mut errors);
        } else {
            errors.push(format!(
                "line {}: `<{}>` is not declared as a top-level element",
                root.line, root.name
            ));
        }
        if errors.is_empty() { Ok(()) } else { Err(errors) }
    }

    fn check(&self, node: &Node, errors: &mut Vec<String>) {
        let Some(element) = self.elements.get(&node.name) else {
            errors.push(format!("line {}: `<{}>` is not declared", node.line, node.name));
            return;
        };
        let at = format!("line {}: `<{}>`", node.line, node.name);
        match element {
            ElementType::Simple(simple) => {
                if let Some(child) = node.children.first() {
                    errors.push(format!(
                        "{at} has simple content ({}) but contains `<{}>`",
                        type_word(*simple),
                        child.name
                    ));
                }
                if let Some(attribute) = node.attributes.keys().find(|k| !is_namespace(k)) {
                    errors.push(format!("{at} has simple content and no attribute `{attribute}`"));
                }
                if !simple_value_ok(*simple, &node.text) {
                    errors.push(format!(
                        "{at}: {:?} is not a valid {}",
                        node.text,
                        type_word(*simple)
                    ));
                }
            }
            ElementType::Complex { mixed, content, attributes } => {
                for (name, value) in &node.attributes {
                    match attributes.get(name) {
                        Some((simple, _)) if !simple_value_ok(*simple, value) => {
                            errors.push(format!(
                                "{at}: attribute `{name}`: {value:?} is not a valid {}",
                                type_word(*simple)
                            ))
                        }
                        Some(_) => {}
                        None if is_namespace(name) => {}
                        None => {
                            errors.push(format!("{at} has no attribute `{name}` in the schema"))
                        }
                    }
                }
                for (name, (_, required)) in attributes {
                    if *required && !node.attributes.contains_key(name) {
                        errors.push(format!("{at} lacks the required attribute `{name}`"));
                    }
                }
                if !mixed && !node.text.trim().is_empty() {
                    errors.push(format!(
                        "{at} is not mixed but contains text {:?}",
                        node.text.trim()
                    ));
                }
                let names: Vec<&str> = node.children.iter().map(|c| c.name.as_str()).collect();
                let fits = match content {
                    None => names.is_empty(),
                    Some(particle) => ends(particle, &names, 0).contains(&names.len()),
                };
                if !fits {
                    let model = content.as_ref().map_or_else(|| "empty".to_owned(), describe);
                    errors.push(format!(
                        "{at}: its children ({}) do not match its content model {model}",
                        if names.is_empty() { "none".to_owned() } else { names.join(", ") }
                    ));
                }
                for child in &node.children {
                    self.check(child, errors);
                }
            }
        }
    }
}

/// `xmlns`, `xmlns:…` and `xml:…` attributes are not the schema's business.
fn is_namespace(name: &str) -> bool {
    name == "xmlns" || name.starts_with("xmlns:") || name.starts_with("xml:")
}

fn expect_name(node: &Node, name: &str) -> Result<(), String> {
    if node.name == name {
        Ok(())
    } else {
        Err(format!(
            "line {}: `<{}>` is not interpreted here (expected `<{name}>`)",
            node.line, node.name
        ))
    }
}

fn allow_attributes(node: &Node, allowed: &[&str]) -> Result<(), String> {
    match node.attributes.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(key) => Err(format!(
            "line {}: attribute `{key}` of `<{}>` is not interpreted",
            node.line, node.name
        )),
        None => Ok(()),
    }
}

fn required<'a>(node: &'a Node, attribute: &str) -> Result<&'a str, String> {
    node.attributes
        .get(attribute)
        .map(String::as_str)
        .ok_or_else(|| format!("line {}: `<{}>` lacks `{attribute}`", node.line, node.name))
}

fn simple_type(name: &str, line: usize) -> Result<SimpleType, String> {
    Ok(match name {
        "xs:string" => SimpleType::String,
        "xs:boolean" => SimpleType::Boolean,
        "xs:integer" => SimpleType::Integer,
        "xs:int" => SimpleType::Int,
        "xs:decimal" => SimpleType::Decimal,
        other => return Err(format!("line {line}: type `{other}` is not interpreted")),
    })
}

fn type_word(simple: SimpleType) -> &'static str {
    match simple {
        SimpleType::String => "xs:string",
        SimpleType::Boolean => "xs:boolean",
        SimpleType::Integer => "xs:integer",
        SimpleType::Int => "xs:int",
        SimpleType::Decimal => "xs:decimal",
    }
}

/// Whether `value` is in the type's lexical space (whitespace collapsed as XSD does for them).
fn simple_value_ok(simple: SimpleType, value: &str) -> bool {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let unsigned = |s: &str| s.strip_prefix(['+', '-']).unwrap_or(s).to_owned();
    let trimmed = value.trim();
    match simple {
        SimpleType::String => true,
        SimpleType::Boolean => matches!(trimmed, "true" | "false" | "1" | "0"),
        SimpleType::Integer => digits(&unsigned(trimmed)),
        SimpleType::Int => digits(&unsigned(trimmed)) && trimmed.parse::<i32>().is_ok(),
        SimpleType::Decimal => {
            let number = unsigned(trimmed);
            match number.split_once('.') {
                Some((whole, fraction)) => {
                    (whole.is_empty() || digits(whole))
                        && (fraction.is_empty() || digits(fraction))
                        && !(whole.is_empty() && fraction.is_empty())
                }
                None => digits(&number),
            }
        }
    }
}

fn occurs(node: &Node) -> Result<Occurs, String> {
    let number = |key: &str, default: usize| -> Result<Option<usize>, String> {
        match node.attributes.get(key).map(String::as_str) {
            None => Ok(Some(default)),
            Some("unbounded") if key == "maxOccurs" => Ok(None),
            Some(value) => value
                .parse()
                .map(Some)
                .map_err(|_| format!("line {}: `{key}=\"{value}\"` is not a count", node.line)),
        }
    };
    let min = number("minOccurs", 1)?.expect("minOccurs is never unbounded");
    let max = number("maxOccurs", 1)?;
    if max.is_some_and(|max| max < min) {
        return Err(format!("line {}: maxOccurs is below minOccurs", node.line));
    }
    Ok(Occurs { min, max })
}

fn complex_type(node: &Node) -> Result<ElementType, String> {
    expect_name(node, "xs:complexType")?;
    allow_attributes(node, &["mixed"])?;
    let mixed = match node.attributes.get("mixed").map(String::as_str) {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => return Err(format!("line {}: mixed=\"{other}\"", node.line)),
    };
    let mut content = None;
    let mut attributes = BTreeMap::new();
    for child in &node.children {
        match child.name.as_str() {
            "xs:sequence" | "xs:choice" if content.is_none() && attributes.is_empty() => {
                content = Some(particle(child)?);
            }
            "xs:attribute" => {
                allow_attributes(child, &["name", "type", "use"])?;
                let name = required(child, "name")?;
                let simple = simple_type(required(child, "type")?, child.line)?;
                let required = match child.attributes.get("use").map(String::as_str) {
                    None | Some("optional") => false,
                    Some("required") => true,
                    Some(other) => {
                        return Err(format!(
                            "line {}: use=\"{other}\" is not interpreted",
                            child.line
                        ));
                    }
                };
                attributes.insert(name.to_owned(), (simple, required));
            }
            other => {
                return Err(format!(
                    "line {}: `<{other}>` in a complexType is not interpreted here",
                    child.line
                ));
            }
        }
    }
    Ok(ElementType::Complex { mixed, content, attributes })
}

fn particle(node: &Node) -> Result<Particle, String> {
    match node.name.as_str() {
        "xs:element" => {
            allow_attributes(node, &["ref", "minOccurs", "maxOccurs"])?;
            Ok(Particle::Element(required(node, "ref")?.to_owned(), occurs(node)?))
        }
        "xs:sequence" | "xs:choice" => {
            allow_attributes(node, &["minOccurs", "maxOccurs"])?;
            let items = node.children.iter().map(particle).collect::<Result<Vec<_>, _>>()?;
            Ok(if node.name == "xs:sequence" {
                Particle::Sequence(items, occurs(node)?)
            } else {
                Particle::Choice(items, occurs(node)?)
            })
        }
        other => {
            Err(format!("line {}: `<{other}>` in a content model is not interpreted", node.line))
        }
    }
}

fn references(particle: &Particle) -> Vec<&str> {
    match particle {
        Particle::Element(name, _) => vec![name],
        Particle::Sequence(items, _) | Particle::Choice(items, _) => {
            items.iter().flat_map(references).collect()
        }
    }
}

/// A content model in a regex-like notation, for messages.
fn describe(particle: &Particle) -> String {
    let (body, occurs) = match particle {
        Particle::Element(name, occurs) => (name.clone(), occurs),
        Particle::Sequence(items, occurs) => {
            (format!("({})", items.iter().map(describe).collect::<Vec<_>>().join(", ")), occurs)
        }
        Particle::Choice(items, occurs) => {
            (format!("({})", items.iter().map(describe).collect::<Vec<_>>().join(" | ")), occurs)
        }
    };
    let suffix = match (occurs.min, occurs.max) {
        (1, Some(1)) => String::new(),
        (0, Some(1)) => "?".into(),
        (0, None) => "*".into(),
        (1, None) => "+".into(),
        (min, None) => format!("{{{min},}}"),
        (min, Some(max)) => format!("{{{min},{max}}}"),
    };
    body + &suffix
}

/// Every position the particle, with its occurrence bounds, can end at when it starts matching
/// `names` at `start`.
fn ends(particle: &Particle, names: &[&str], start: usize) -> BTreeSet<usize> {
    let occurs = match particle {
        Particle::Element(_, occurs)
        | Particle::Sequence(_, occurs)
        | Particle::Choice(_, occurs) => *occurs,
    };
    let mut result = BTreeSet::new();
    if occurs.min == 0 {
        result.insert(start);
    }
    let mut current = BTreeSet::from([start]);
    let mut seen = BTreeSet::from([start]);
    let mut count = 0;
    while occurs.max.is_none_or(|max| count < max) {
        count += 1;
        let next: BTreeSet<usize> =
            current.iter().flat_map(|&s| once(particle, names, s)).collect();
        if count >= occurs.min {
            result.extend(&next);
        }
        // Past the minimum, more rounds only matter if they reach new positions.
        let fresh: BTreeSet<usize> = next.difference(&seen).copied().collect();
        if next.is_empty() || (count >= occurs.min && fresh.is_empty()) {
            break;
        }
        seen.extend(&next);
        current = if count >= occurs.min { fresh } else { next };
    }
    result
}

/// Positions one occurrence of the particle can end at.
fn once(particle: &Particle, names: &[&str], start: usize) -> BTreeSet<usize> {
    match particle {
        Particle::Element(name, _) => {
            if names.get(start) == Some(&name.as_str()) {
                BTreeSet::from([start + 1])
            } else {
                BTreeSet::new()
            }
        }
        Particle::Sequence(items, _) => {
            let mut positions = BTreeSet::from([start]);
            for item in items {
                positions = positions.iter().flat_map(|&p| ends(item, names, p)).collect();
                if positions.is_empty() {
                    break;
                }
            }
            positions
        }
        Particle::Choice(items, _) => {
            items.iter().flat_map(|item| ends(item, names, start)).collect()
        }
    }
}
