//! The JSON Schema (draft 2020-12) of the scenario format, generated from the key table in
//! `keys.rs` that validation reads mappings with: every section becomes a `$defs` entry with its
//! keys (unknown keys refused, as `validate` refuses them), their shapes, descriptions and enums.
//!
//! The schema says what an editor can say while typing (keys, types, enums, duration and rate
//! syntax, exactly one action per step); references between parts (a step naming a declared
//! service), ranges across keys and build contexts stay with `firedrill validate`.

use serde_json::{Map, Value, json};

use super::keys::{self, Section, Shape};

/// `250ms`, `30s`, `5m`, `1h`, `1m30s` (units largest first; `us`/`ns` too).
const DURATION: &str = r"^\s*([0-9]+(h|m|s|ms|us|ns))+\s*$";
/// `20/s`, `0.5/s`, `600/m`.
const RATE: &str = r"^\s*[0-9]+(\.[0-9]+)?\s*/\s*(s|m)\s*$";
/// `99%`, `99.5%`, `99.5`.
const PERCENT: &str = r"^[0-9]+(\.[0-9]+)?%?$";

/// The schema of a scenario file.
pub fn scenario_schema() -> Value {
    let mut defs = Map::new();
    collect(&keys::TOP, &mut defs);
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "firedrill scenario (format v1)",
        "description": keys::TOP.doc,
        "$ref": format!("#/$defs/{}", keys::TOP.id),
        "$defs": defs,
    })
}

/// Add `section` and every section it reaches to `defs`, once each.
fn collect(section: &'static Section, defs: &mut Map<String, Value>) {
    if defs.contains_key(section.id) {
        return;
    }
    // Placeholder first: sections reach themselves (`parallel` children are steps).
    defs.insert(section.id.to_owned(), Value::Null);
    let mut properties = Map::new();
    for key in section.keys {
        let mut schema = shape(&key.shape, defs);
        if let Value::Object(object) = &mut schema {
            object.insert("description".into(), Value::String(key.doc.to_owned()));
        }
        properties.insert(key.name.to_owned(), schema);
    }
    let required: Vec<&str> = section.keys.iter().filter(|k| k.required).map(|k| k.name).collect();
    let mut object = Map::new();
    object.insert("type".into(), json!("object"));
    object.insert("description".into(), json!(section.doc));
    object.insert("properties".into(), Value::Object(properties));
    object.insert("additionalProperties".into(), json!(false));
    if !required.is_empty() {
        object.insert("required".into(), json!(required));
    }
    if section.one_choice {
        let alternatives: Vec<Value> =
            section.choices().iter().map(|choice| json!({ "required": [choice] })).collect();
        object.insert("oneOf".into(), Value::Array(alternatives));
    }
    defs.insert(section.id.to_owned(), Value::Object(object));
}

fn text() -> Value {
    json!({ "type": ["string", "number", "boolean"] })
}

fn shape(shape: &'static Shape, defs: &mut Map<String, Value>) -> Value {
    match shape {
        Shape::Text => text(),
        Shape::Duration => json!({ "type": "string", "pattern": DURATION }),
        Shape::Rate => json!({ "type": "string", "pattern": RATE }),
        Shape::Percent => json!({ "anyOf": [
            { "type": "number", "minimum": 0, "maximum": 100 },
            { "type": "string", "pattern": PERCENT },
        ] }),
        Shape::Integer(min, max) => json!({ "type": "integer", "minimum": min, "maximum": max }),
        Shape::Number => json!({ "type": "number" }),
        Shape::Bool => json!({ "type": "boolean" }),
        Shape::Enum(values) => json!({ "enum": values }),
        Shape::EnumAnyCase(values) => {
            let any_case = |value: &str| -> String {
                value
                    .chars()
                    .map(|c| format!("[{}{}]", c.to_ascii_uppercase(), c.to_ascii_lowercase()))
                    .collect()
            };
            let alternatives: Vec<String> = values.iter().map(|v| any_case(v)).collect();
            json!({ "type": "string", "pattern": format!("^({})$", alternatives.join("|")), "examples": values })
        }
        Shape::Argv => json!({ "type": "array", "items": text(), "minItems": 1 }),
        Shape::TextList => json!({ "type": "array", "items": text() }),
        Shape::TextMap => json!({ "type": "object", "additionalProperties": text() }),
        Shape::Section(section) => {
            collect(section, defs);
            json!({ "$ref": format!("#/$defs/{}", section.id) })
        }
        Shape::List(item) => json!({ "type": "array", "items": self::shape(item, defs) }),
        Shape::Map(value) => {
            json!({ "type": "object", "additionalProperties": self::shape(value, defs) })
        }
        Shape::AnyOf(shapes) => {
            let alternatives: Vec<Value> = shapes.iter().map(|s| self::shape(s, defs)).collect();
            json!({ "anyOf": alternatives })
        }
        // `false` refuses any value; the description still explains where the key belongs.
        Shape::Forbidden => json!({ "not": {} }),
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::*;
    use crate::scenario::tree::{self, Node, ScalarKind};

    /// A YAML document as JSON, the way validation reads it (YAML 1.2 core schema scalars).
    fn to_json(node: &Node) -> Value {
        match &node.value {
            tree::Value::Scalar(scalar) => match scalar.kind() {
                ScalarKind::Null => Value::Null,
                ScalarKind::Bool => Value::Bool(scalar.text.eq_ignore_ascii_case("true")),
                ScalarKind::Int => {
                    let text = scalar.text.as_str();
                    let parsed = if let Some(hex) = text.strip_prefix("0x") {
                        i64::from_str_radix(hex, 16).ok()
                    } else if let Some(octal) = text.strip_prefix("0o") {
                        i64::from_str_radix(octal, 8).ok()
                    } else {
                        text.parse().ok()
                    };
                    parsed.map_or_else(|| Value::String(text.to_owned()), |n| json!(n))
                }
                ScalarKind::Float => scalar
                    .text
                    .parse::<f64>()
                    .ok()
                    .and_then(serde_json::Number::from_f64)
                    .map_or_else(|| Value::String(scalar.text.clone()), Value::Number),
                _ => Value::String(scalar.text.clone()),
            },
            tree::Value::Seq(items) => Value::Array(items.iter().map(to_json).collect()),
            tree::Value::Map(entries) => Value::Object(
                entries
                    .iter()
                    .map(|e| {
                        let key = e.key.scalar().map(|s| s.text.clone()).unwrap_or_default();
                        (key, to_json(&e.value))
                    })
                    .collect(),
            ),
        }
    }

    fn root() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
    }

    fn yaml_files(folder: &str) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = fs_err::read_dir(root().join(folder))
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
            .collect();
        files.sort();
        files
    }

    /// A real draft 2020-12 validator (boon) with the generated schema compiled in.
    struct Checker {
        schemas: boon::Schemas,
        index: boon::SchemaIndex,
    }

    impl Checker {
        fn new() -> Self {
            let mut schemas = boon::Schemas::new();
            let mut compiler = boon::Compiler::new();
            compiler.enable_format_assertions();
            let url = "https://firedrill.invalid/scenario.schema.json";
            compiler.add_resource(url, scenario_schema()).expect("the schema is JSON");
            let index = compiler.compile(url, &mut schemas).expect("the schema compiles");
            Checker { schemas, index }
        }

        fn check(&self, path: &Path) -> Result<(), String> {
            let source = fs_err::read_to_string(path).unwrap();
            let document = tree::parse(&source).unwrap().map(|node| to_json(&node));
            let document = document.unwrap_or(Value::Null);
            self.schemas.validate(&document, self.index).map_err(|error| format!("{error:#}"))
        }
    }

    #[test]
    fn every_valid_scenario_passes_the_schema() {
        let checker = Checker::new();
        let mut files = yaml_files("tests/scenarios/valid");
        assert!(files.len() >= 5, "{files:?}");
        // The shipped scenarios that validate, too.
        for file in yaml_files("scenarios") {
            if crate::scenario::load(&file).is_ok() {
                files.push(file);
            }
        }
        assert!(files.len() >= 15, "{files:?}");
        for file in files {
            if let Err(error) = checker.check(&file) {
                panic!("{} fails the schema:\n{error}", file.display());
            }
        }
    }

    /// The invalid corpus files whose mistake is one of shape (an unknown or misplaced key, a
    /// wrong type, a missing key, two actions in one step): the schema rejects them as well.
    #[test]
    fn shape_errors_of_the_invalid_corpus_fail_the_schema() {
        let checker = Checker::new();
        let shape_errors = [
            "bad-duration",
            "bad-rate",
            "fault-without-for",
            "link-fault-without-for",
            "missing-name",
            "missing-tag",
            "notify-unknown-channel",
            "pull-unknown-policy",
            "sink-outage-bad-status",
            "two-actions",
            "unknown-key",
            "wrong-type",
        ];
        let mut checked = 0;
        for name in shape_errors {
            let path = root().join(format!("tests/scenarios/invalid/{name}.yaml"));
            checked += 1;
            assert!(checker.check(&path).is_err(), "{name} passes the schema");
        }
        assert_eq!(checked, shape_errors.len());
    }

    #[test]
    fn the_schema_is_draft_2020_12_and_refuses_unknown_keys() {
        let schema = scenario_schema();
        assert_eq!(schema["$schema"], "https://json-schema.org/draft/2020-12/schema");
        let service = &schema["$defs"]["service"];
        assert_eq!(service["additionalProperties"], false);
        assert_eq!(service["properties"]["pull"]["enum"], json!(["missing", "always", "never"]));
        assert!(service["properties"]["replicas"]["description"].as_str().unwrap().contains("16"));
        let step = &schema["$defs"]["step"];
        assert!(step["oneOf"].as_array().unwrap().len() > 20);
    }

    /// Every key the README's scenario reference shows appears in the schema, at some level.
    #[test]
    fn every_key_of_the_readme_reference_is_in_the_schema() {
        let readme = fs_err::read_to_string(root().join("README.md")).unwrap();
        let start = readme.find("## Scenario reference").expect("the reference section");
        let block = &readme[start..];
        let block = &block[block.find("```yaml").unwrap() + 7..];
        let block = &block[..block.find("```").unwrap()];
        let schema = scenario_schema().to_string();
        let mut missing = Vec::new();
        let mut seen = 0;
        for line in block.lines() {
            let code = line.split(" #").next().unwrap_or_default();
            let code = code.trim_start().trim_start_matches("- ").trim_start_matches('#').trim();
            // `key:` at the start of the line, and `key:` inside `{ ... }` flow mappings.
            let mut candidates: Vec<&str> = Vec::new();
            if let Some((first, _)) = code.split_once(':') {
                candidates.push(first.trim());
            }
            for part in code.split(['{', ',']).skip(1) {
                if let Some((key, _)) = part.split_once(':') {
                    candidates.push(key.trim());
                }
            }
            for key in candidates {
                let is_key = !key.is_empty()
                    && key.chars().all(|c| c.is_ascii_lowercase() || c == '-')
                    && key.chars().next().is_some_and(|c| c.is_ascii_lowercase());
                if !is_key {
                    continue;
                }
                seen += 1;
                // Names the user chooses (services, traffic, sinks) are not keys.
                let user_names = ["db", "billing", "checkout", "other", "api", "chaos"];
                if user_names.contains(&key) {
                    continue;
                }
                // A key of a per-channel map (`recipients: { sms: [...] }`) is a channel: an enum
                // value of the schema rather than a property name.
                if !schema.contains(&format!("\"{key}\"")) {
                    missing.push(key.to_owned());
                }
            }
        }
        assert!(seen > 100, "only {seen} keys read from the README");
        assert_eq!(missing, Vec::<String>::new(), "README keys missing from the schema");
    }
}
