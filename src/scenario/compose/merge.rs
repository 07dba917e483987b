//! Several compose files → one tree, the way `docker compose -f a.yml -f b.yml` merges them:
//! per service, a later file replaces single values (`image`, `command`, ...), merges mappings
//! (`environment`, `labels`, `build`, `healthcheck`, `deploy`, `depends_on`, ...) key by key, and
//! appends lists (`ports`, `expose`, `volumes`, `tmpfs`, ...); a later entry of `environment` or
//! `volumes` with the same name or target wins when the service is read.

use crate::scenario::tree::{Entry, Node, Scalar, Style, Value};

/// Service keys whose lists are appended.
const APPEND: &[&str] = &["ports", "expose", "volumes", "tmpfs", "env_file", "dns", "profiles"];
/// Service keys that are mappings (or lists that stand for one) merged key by key.
const MAPPING: &[&str] = &[
    "environment",
    "labels",
    "build",
    "healthcheck",
    "deploy",
    "depends_on",
    "networks",
    "logging",
    "args",
    "resources",
    "limits",
];

/// Merge the root of a later file into the merged root so far.
pub(super) fn merge_roots(base: &mut Node, later: &Node) {
    merge_entries(base, later, |key, existing, later| match key {
        "services" => merge_named(existing, later, merge_service),
        "volumes" | "networks" => merge_named(existing, later, merge_mapping),
        _ => *existing = later.clone(),
    });
}

/// Merge two mappings of named things (services, volumes) entry by entry with `merge`.
fn merge_named(base: &mut Node, later: &Node, merge: fn(&mut Node, &Node)) {
    merge_entries(base, later, |_, existing, later| merge(existing, later));
}

/// Merge one service of a later file into the same service so far.
pub(super) fn merge_service(base: &mut Node, later: &Node) {
    merge_entries(base, later, |key, existing, later| {
        if APPEND.contains(&key) {
            append(existing, later);
        } else if MAPPING.contains(&key) {
            merge_mapping(existing, later);
        } else {
            *existing = later.clone();
        }
    });
}

/// Merge two mappings recursively (a list form on either side is turned into a mapping first);
/// anything else is replaced.
fn merge_mapping(base: &mut Node, later: &Node) {
    let later = as_mapping(later);
    as_mapping_in_place(base);
    merge_entries(base, &later, |_, existing, later| {
        if matches!(existing.value, Value::Map(_)) {
            merge_mapping(existing, later);
        } else {
            *existing = later.clone();
        }
    });
}

/// The one merge loop: a key only the later mapping has is added; a key both have is merged by
/// `both(key, existing value, later value)`. A side that is not a mapping makes the later node
/// replace the base.
fn merge_entries(base: &mut Node, later: &Node, mut both: impl FnMut(&str, &mut Node, &Node)) {
    let (Value::Map(base_entries), Value::Map(later_entries)) = (&mut base.value, &later.value)
    else {
        *base = later.clone();
        return;
    };
    for entry in later_entries {
        let key = key_text(&entry.key);
        match base_entries.iter_mut().find(|e| key_text(&e.key) == key) {
            Some(existing) => both(&key, &mut existing.value, &entry.value),
            None => base_entries.push(entry.clone()),
        }
    }
}

fn append(base: &mut Node, later: &Node) {
    let as_list = |node: &Node| match &node.value {
        Value::Seq(items) => items.clone(),
        _ => vec![node.clone()],
    };
    let mut items = as_list(base);
    items.extend(as_list(later));
    base.value = Value::Seq(items);
}

fn as_mapping_in_place(node: &mut Node) {
    if !matches!(node.value, Value::Map(_)) {
        *node = as_mapping(node);
    }
}

/// A list of `KEY=VALUE` / `NAME` items as a mapping (`NAME` maps to an empty value); a string
/// (`build: ./dir`) as `{ context: ... }`; anything else unchanged.
fn as_mapping(node: &Node) -> Node {
    match &node.value {
        Value::Seq(items) => {
            let mut entries = Vec::with_capacity(items.len());
            for item in items {
                let Some(scalar) = item.scalar() else { return node.clone() };
                let (key, value) = match scalar.text.split_once('=') {
                    Some((key, value)) => (key, Some(value)),
                    None => (scalar.text.as_str(), None),
                };
                entries.push(Entry {
                    key: text_node(item, key, Style::Plain),
                    value: match value {
                        Some(value) => text_node(item, value, Style::Quoted),
                        None => text_node(item, "", Style::Plain),
                    },
                });
            }
            Node { span: node.span, value: Value::Map(entries) }
        }
        Value::Scalar(_) => Node {
            span: node.span,
            value: Value::Map(vec![Entry {
                key: text_node(node, "context", Style::Plain),
                value: node.clone(),
            }]),
        },
        Value::Map(_) => node.clone(),
    }
}

/// YAML merge keys (`<<: *base`, `<<: [*a, *b]`), common in compose files: the merged mappings'
/// entries are added where the mapping does not have the key itself; earlier sources win.
pub(super) fn resolve_merge_keys(node: &mut Node) {
    match &mut node.value {
        Value::Seq(items) => items.iter_mut().for_each(resolve_merge_keys),
        Value::Scalar(_) => {}
        Value::Map(entries) => {
            for entry in entries.iter_mut() {
                resolve_merge_keys(&mut entry.value);
            }
            let is_merge = |e: &Entry| {
                e.key.scalar().is_some_and(|k| k.text == "<<" && k.style == Style::Plain)
            };
            if !entries.iter().any(is_merge) {
                return;
            }
            let (merges, mut own): (Vec<Entry>, Vec<Entry>) =
                std::mem::take(entries).into_iter().partition(is_merge);
            for merge in merges {
                let sources: Vec<Node> = match merge.value.value {
                    Value::Seq(items) => items,
                    _ => vec![merge.value],
                };
                for source in sources {
                    let Value::Map(source_entries) = source.value else {
                        // Not a mapping: keep it so that the reader reports it.
                        own.push(Entry { key: merge.key.clone(), value: source });
                        continue;
                    };
                    for entry in source_entries {
                        if !own.iter().any(|e| key_text(&e.key) == key_text(&entry.key)) {
                            own.push(entry);
                        }
                    }
                }
            }
            *entries = own;
        }
    }
}

fn text_node(at: &Node, text: &str, style: Style) -> Node {
    Node {
        span: at.span,
        value: Value::Scalar(Scalar { text: text.to_owned(), style, verbatim_at: None }),
    }
}

fn key_text(node: &Node) -> String {
    node.scalar().map(|s| s.text.clone()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::tree;

    fn merged(a: &str, b: &str) -> Node {
        let mut base = tree::parse(a).unwrap().unwrap();
        merge_roots(&mut base, &tree::parse(b).unwrap().unwrap());
        base
    }

    fn at<'n>(node: &'n Node, path: &[&str]) -> &'n Node {
        path.iter().fold(node, |node, key| {
            let Value::Map(entries) = &node.value else { panic!("not a map at {key}") };
            &entries.iter().find(|e| key_text(&e.key) == *key).expect(key).value
        })
    }

    fn texts(node: &Node) -> Vec<String> {
        match &node.value {
            Value::Seq(items) => items.iter().map(|i| i.scalar().unwrap().text.clone()).collect(),
            Value::Map(entries) => entries
                .iter()
                .map(|e| format!("{}={}", key_text(&e.key), e.value.scalar().unwrap().text))
                .collect(),
            Value::Scalar(s) => vec![s.text.clone()],
        }
    }

    #[test]
    fn later_files_replace_merge_and_append_like_compose() {
        let root = merged(
            "services:\n  web:\n    image: a:1\n    ports: ['80']\n    environment: [A=1, B=2]\n    command: x\n",
            "services:\n  web:\n    image: a:2\n    ports: ['443']\n    environment: { B: '3', C: '4' }\n  db:\n    image: d\n",
        );
        assert_eq!(texts(at(&root, &["services", "web", "image"])), ["a:2"]);
        assert_eq!(texts(at(&root, &["services", "web", "ports"])), ["80", "443"]);
        assert_eq!(texts(at(&root, &["services", "web", "environment"])), ["A=1", "B=3", "C=4"]);
        assert_eq!(texts(at(&root, &["services", "web", "command"])), ["x"]);
        assert_eq!(texts(at(&root, &["services", "db", "image"])), ["d"]);
    }

    #[test]
    fn merge_keys_fill_what_the_mapping_lacks() {
        let mut root = tree::parse(
            "x: &base { image: a, user: u }\nservices:\n  s:\n    <<: *base\n    image: b\n",
        )
        .unwrap()
        .unwrap();
        resolve_merge_keys(&mut root);
        assert_eq!(texts(at(&root, &["services", "s", "image"])), ["b"]);
        assert_eq!(texts(at(&root, &["services", "s", "user"])), ["u"]);
    }

    #[test]
    fn build_strings_merge_with_build_mappings() {
        let root = merged(
            "services:\n  web:\n    build: ./app\n",
            "services:\n  web:\n    build: { target: prod }\n",
        );
        assert_eq!(
            texts(at(&root, &["services", "web", "build"])),
            ["context=./app", "target=prod"]
        );
    }
}
