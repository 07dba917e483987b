//! Compose variable interpolation: `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`,
//! `${VAR:?message}`, `${VAR?message}`, `${VAR:+alt}`, `${VAR+alt}` and `$$` for a literal `$`,
//! the way `docker compose` reads them; plus the `.env` / `env_file` line format.
//!
//! Pure: the variables come in as a map; nothing here reads the process environment.

use std::ops::Range;

use indexmap::IndexMap;

/// What interpolating one string found wrong, with the byte range inside the string.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Mistake {
    /// Where in the string.
    pub range: Range<usize>,
    /// Lowercase message.
    pub message: String,
    /// Whether it is only a warning (an unset variable becomes an empty string, as in compose).
    pub warning: bool,
}

/// Interpolate `text` with `vars`. Returns the result and what went wrong; the result is usable
/// only when no mistake is an error.
pub(super) fn interpolate(text: &str, vars: &IndexMap<String, String>) -> (String, Vec<Mistake>) {
    let mut out = String::with_capacity(text.len());
    let mut mistakes = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let Some(offset) = text[i..].find('$') else {
            out.push_str(&text[i..]);
            break;
        };
        out.push_str(&text[i..i + offset]);
        let start = i + offset;
        let rest = &text[start + 1..];
        if rest.starts_with('$') {
            out.push('$');
            i = start + 2;
        } else if let Some(body) = rest.strip_prefix('{') {
            let Some(close) = body.find('}') else {
                mistakes.push(Mistake {
                    range: start..text.len(),
                    message: "unclosed `${` in interpolation".to_owned(),
                    warning: false,
                });
                return (out, mistakes);
            };
            let end = start + 2 + close + 1;
            let inner = &body[..close];
            expand(inner, vars, start..end, &mut out, &mut mistakes);
            i = end;
        } else {
            let name_len = name_length(rest);
            if name_len == 0 {
                mistakes.push(Mistake {
                    range: start..(start + 1 + rest.chars().next().map_or(0, char::len_utf8)),
                    message: "invalid interpolation: `$` must be followed by a name, `{` or `$`"
                        .to_owned(),
                    warning: false,
                });
                i = start + 1;
                continue;
            }
            let name = &rest[..name_len];
            let end = start + 1 + name_len;
            lookup(name, vars, start..end, &mut out, &mut mistakes);
            i = end;
        }
    }
    (out, mistakes)
}

fn name_length(text: &str) -> usize {
    let mut chars = text.char_indices();
    match chars.next() {
        Some((_, c)) if c == '_' || c.is_ascii_alphabetic() => {}
        _ => return 0,
    }
    chars
        .find(|(_, c)| !(*c == '_' || c.is_ascii_alphanumeric()))
        .map_or(text.len(), |(index, _)| index)
}

fn lookup(
    name: &str,
    vars: &IndexMap<String, String>,
    range: Range<usize>,
    out: &mut String,
    mistakes: &mut Vec<Mistake>,
) {
    match vars.get(name) {
        Some(value) => out.push_str(value),
        None => mistakes.push(Mistake {
            range,
            message: format!("variable `{name}` is not set; it becomes an empty string"),
            warning: true,
        }),
    }
}

fn expand(
    inner: &str,
    vars: &IndexMap<String, String>,
    range: Range<usize>,
    out: &mut String,
    mistakes: &mut Vec<Mistake>,
) {
    let name_len = name_length(inner);
    let name = &inner[..name_len];
    let operator = &inner[name_len..];
    if name.is_empty() {
        mistakes.push(Mistake {
            range,
            message: format!("invalid interpolation `${{{inner}}}`: expected a variable name"),
            warning: false,
        });
        return;
    }
    let value = vars.get(name);
    let set_non_empty = value.is_some_and(|v| !v.is_empty());
    let (op, argument) = ["-", ":-", "?", ":?", "+", ":+"]
        .iter()
        .rev()
        .find_map(|op| operator.strip_prefix(op).map(|arg| (*op, arg)))
        .unwrap_or(("", operator));
    match op {
        "" if argument.is_empty() => lookup(name, vars, range, out, mistakes),
        "" => mistakes.push(Mistake {
            range,
            message: format!("invalid interpolation `${{{inner}}}`"),
            warning: false,
        }),
        ":-" => out.push_str(if set_non_empty { value.expect("set") } else { argument }),
        "-" => out.push_str(value.map_or(argument, String::as_str)),
        ":?" | "?" => {
            let fails = if op == ":?" { !set_non_empty } else { value.is_none() };
            if fails {
                let why = if argument.is_empty() { "required" } else { argument };
                mistakes.push(Mistake {
                    range,
                    message: format!("variable `{name}` is not set: {why}"),
                    warning: false,
                });
            } else {
                out.push_str(value.expect("set"));
            }
        }
        _ => {
            let use_alt = if op == ":+" { set_non_empty } else { value.is_some() };
            if use_alt {
                out.push_str(argument);
            }
        }
    }
}

/// One line of a `.env` or `env_file` that is not `KEY=VALUE`: its 0-based line number.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct BadLine(pub usize);

/// Read `KEY=VALUE` lines: blank lines and `#` comments are skipped, `export ` is allowed, values
/// in matching single or double quotes lose them. A line `KEY` alone is `Err` (compose would take
/// it from the shell; firedrill keeps a rehearsal independent of who runs it).
pub(super) fn dotenv(text: &str) -> (IndexMap<String, String>, Vec<BadLine>) {
    let mut vars = IndexMap::new();
    let mut bad = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((key, value)) = line.split_once('=') else {
            bad.push(BadLine(number));
            continue;
        };
        let key = key.trim();
        if name_length(key) != key.len() || key.is_empty() {
            bad.push(BadLine(number));
            continue;
        }
        let value = value.trim();
        let unquoted = ['"', '\'']
            .iter()
            .find_map(|q| value.strip_prefix(*q).and_then(|v| v.strip_suffix(*q)))
            .unwrap_or(value);
        vars.insert(key.to_owned(), unquoted.to_owned());
    }
    (vars, bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> IndexMap<String, String> {
        IndexMap::from([("TAG".to_owned(), "1.0".to_owned()), ("EMPTY".to_owned(), String::new())])
    }

    fn ok(text: &str) -> String {
        let (out, mistakes) = interpolate(text, &vars());
        assert!(mistakes.iter().all(|m| m.warning), "{mistakes:?}");
        out
    }

    #[test]
    fn expands_every_form() {
        assert_eq!(ok("app:${TAG}"), "app:1.0");
        assert_eq!(ok("app:$TAG-x"), "app:1.0-x");
        assert_eq!(ok("${MISSING:-2.0}"), "2.0");
        assert_eq!(ok("${EMPTY:-d}"), "d");
        assert_eq!(ok("${EMPTY-d}"), "");
        assert_eq!(ok("${MISSING-d}"), "d");
        assert_eq!(ok("${TAG:+alt}|${EMPTY:+alt}|${EMPTY+alt}"), "alt||alt");
        assert_eq!(ok("cost $$5 and $${TAG}"), "cost $5 and ${TAG}");
        assert_eq!(ok("${TAG:?must be set}"), "1.0");
    }

    #[test]
    fn reports_mistakes_with_their_range() {
        let (_, mistakes) = interpolate("a ${MISSING:?set MISSING} b", &vars());
        assert_eq!(mistakes[0].range, 2..25);
        assert_eq!(mistakes[0].message, "variable `MISSING` is not set: set MISSING");
        assert!(!mistakes[0].warning);
        let (_, mistakes) = interpolate("x $1", &vars());
        assert!(!mistakes[0].warning);
        let (_, mistakes) = interpolate("${TAG", &vars());
        assert!(mistakes[0].message.contains("unclosed"));
        let (out, mistakes) = interpolate("v=$NOPE", &vars());
        assert_eq!(out, "v=");
        assert!(mistakes[0].warning);
    }

    #[test]
    fn reads_dotenv_lines() {
        let (vars, bad) = dotenv("# c\nA=1\n\nexport B=\"two words\"\nC='x'\nbroken\nD=a=b\n");
        assert_eq!(vars["A"], "1");
        assert_eq!(vars["B"], "two words");
        assert_eq!(vars["C"], "x");
        assert_eq!(vars["D"], "a=b");
        assert_eq!(bad, vec![BadLine(5)]);
    }
}
