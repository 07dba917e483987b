//! `{{ ... }}` references inside `env` values: text → [`Template`] parts, with byte ranges so that
//! a mistake can be pointed at inside the string.
//!
//! Only the shape is checked here; whether a named service exists (and has ports) is `validate`'s
//! business, since it needs the whole stack.

use std::ops::Range;

use super::model::{Field, Reference, Template, TemplatePart};

/// A reference found in a template, with where it sits in the text.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Found {
    /// What it names.
    pub reference: Reference,
    /// Byte range of the whole `{{ ... }}` in the text.
    pub range: Range<usize>,
}

/// A mistake in a template, with where it sits in the text.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TemplateError {
    /// Lowercase message.
    pub message: String,
    /// Label at the range.
    pub label: String,
    /// Hint.
    pub help: Option<String>,
    /// Byte range in the text.
    pub range: Range<usize>,
}

const FORMS: &str = "use `services.NAME.host|port|addr`, `links.NAME.host|port|addr`, \
                     `sinks.NAME.host|port|addr|url` or `run.id`";

/// Split `text` into literal text and references. Returns the template (mistaken references are
/// left out) with the references found, and every mistake.
pub(crate) fn parse(text: &str) -> (Template, Vec<Found>, Vec<TemplateError>) {
    let mut parts = Vec::new();
    let mut found = Vec::new();
    let mut errors = Vec::new();
    let mut literal = String::new();
    let mut rest_start = 0;
    while let Some(open) = text[rest_start..].find("{{").map(|i| i + rest_start) {
        literal.push_str(&text[rest_start..open]);
        let inner_start = open + 2;
        let Some(close) = text[inner_start..].find("}}").map(|i| i + inner_start) else {
            errors.push(TemplateError {
                message: "unclosed `{{` in template".to_owned(),
                label: "opened here".to_owned(),
                help: Some("close the reference with `}}`".to_owned()),
                range: open..inner_start,
            });
            rest_start = text.len();
            literal.clear();
            break;
        };
        let range = open..close + 2;
        match reference(text[inner_start..close].trim()) {
            Ok(reference) => {
                if !literal.is_empty() {
                    parts.push(TemplatePart::Literal(std::mem::take(&mut literal)));
                }
                parts.push(TemplatePart::Ref(reference.clone()));
                found.push(Found { reference, range });
            }
            Err(error) => errors.push(TemplateError { range, ..error }),
        }
        rest_start = close + 2;
    }
    literal.push_str(&text[rest_start..]);
    if !literal.is_empty() || parts.is_empty() {
        parts.push(TemplatePart::Literal(literal));
    }
    (Template { parts }, found, errors)
}

fn reference(path: &str) -> Result<Reference, TemplateError> {
    let segments: Vec<&str> = path.split('.').map(str::trim).collect();
    match segments.as_slice() {
        ["run", "id"] => Ok(Reference::RunId),
        ["services", name, "host"] if !name.is_empty() => {
            Ok(Reference::ServiceHost((*name).to_owned()))
        }
        ["services", name, "port"] if !name.is_empty() => {
            Ok(Reference::ServicePort((*name).to_owned()))
        }
        ["services", name, "addr"] if !name.is_empty() => {
            Ok(Reference::ServiceAddr((*name).to_owned()))
        }
        ["links" | "sinks", name, field] if !name.is_empty() => {
            let sink = segments[0] == "sinks";
            let field = match *field {
                "host" => Field::Host,
                "port" => Field::Port,
                "addr" => Field::Addr,
                "url" if sink => Field::Url,
                _ => {
                    let (what, fields) = if sink {
                        ("a sink", "`host`, `port`, `addr` or `url`")
                    } else {
                        ("a link", "`host`, `port` or `addr`")
                    };
                    return Err(TemplateError {
                        message: format!("unknown template reference `{path}`"),
                        label: format!("{what} has no `{field}`"),
                        help: Some(format!("use {fields}")),
                        range: 0..0,
                    });
                }
            };
            let name = (*name).to_owned();
            Ok(if sink { Reference::Sink(name, field) } else { Reference::Link(name, field) })
        }
        ["services", name, field] if !name.is_empty() => Err(TemplateError {
            message: format!("unknown template reference `{path}`"),
            label: format!("a service has no `{field}`"),
            help: Some("use `host`, `port` or `addr`".to_owned()),
            range: 0..0,
        }),
        _ if path.is_empty() => Err(TemplateError {
            message: "empty template reference".to_owned(),
            label: "nothing inside".to_owned(),
            help: Some(FORMS.to_owned()),
            range: 0..0,
        }),
        _ => Err(TemplateError {
            message: format!("unknown template reference `{path}`"),
            label: "unknown reference".to_owned(),
            help: Some(FORMS.to_owned()),
            range: 0..0,
        }),
    }
}

/// The service a reference names, if any.
pub(crate) fn service(reference: &Reference) -> Option<&str> {
    match reference {
        Reference::ServiceHost(name)
        | Reference::ServicePort(name)
        | Reference::ServiceAddr(name) => Some(name),
        Reference::RunId | Reference::Link(..) | Reference::Sink(..) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn literal(text: &str) -> TemplatePart {
        TemplatePart::Literal(text.to_owned())
    }

    #[test]
    fn plain_text_is_one_literal() {
        let (template, found, errors) = parse("postgres://db:5432");
        assert_eq!(template, Template::literal("postgres://db:5432"));
        assert!(found.is_empty() && errors.is_empty());
        assert_eq!(parse("").0, Template::literal(""));
    }

    #[test]
    fn references_with_and_without_spaces() {
        let (template, found, errors) =
            parse("http://{{ services.db.host }}:{{services.db.port}}/{{ run.id }}");
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(
            template.parts,
            vec![
                literal("http://"),
                TemplatePart::Ref(Reference::ServiceHost("db".into())),
                literal(":"),
                TemplatePart::Ref(Reference::ServicePort("db".into())),
                literal("/"),
                TemplatePart::Ref(Reference::RunId),
            ]
        );
        assert_eq!(found[0].range, 7..29);
        assert_eq!(found.len(), 3);
    }

    #[test]
    fn addr_reference() {
        let (template, _, errors) = parse("{{services.billing.addr}}");
        assert!(errors.is_empty());
        assert_eq!(
            template.parts,
            vec![TemplatePart::Ref(Reference::ServiceAddr("billing".into()))]
        );
    }

    #[test]
    fn unknown_references_are_errors_at_their_braces() {
        let (_, _, errors) = parse("x {{ sinks.email.ip }}  {{ services.db.ip }} {{ }}");
        assert_eq!(errors.len(), 3);
        assert_eq!(errors[0].message, "unknown template reference `sinks.email.ip`");
        assert_eq!(errors[0].label, "a sink has no `ip`");
        assert_eq!(errors[0].range, 2..22);
        assert_eq!(errors[1].message, "unknown template reference `services.db.ip`");
        assert_eq!(errors[2].message, "empty template reference");
    }

    #[test]
    fn unclosed_braces_point_at_the_opening() {
        let (_, found, errors) = parse("{{ run.id }} and {{ services.db.host");
        assert_eq!(found.len(), 1);
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].message, "unclosed `{{` in template");
        assert_eq!(errors[0].range, 17..19);
    }

    #[test]
    fn lone_closing_braces_are_text() {
        let (template, _, errors) = parse("a }} b");
        assert!(errors.is_empty());
        assert_eq!(template, Template::literal("a }} b"));
    }
}
