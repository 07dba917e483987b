//! Compose files as a firedrill stack (`stack: { compose: docker-compose.yml }`): read one or
//! more compose files the way `docker compose -f a -f b` does (merge, profiles, `${VAR}`
//! interpolation with a `.env` beside the first file), map each service onto a firedrill
//! [`Service`], and report every key firedrill cannot honour with the compose file's
//! file:line:col — or, for harmless ones, a warning that says why it is ignored.
//!
//! Reads files (the compose files, `.env`, `env_file`s) and checks that build contexts exist;
//! never touches Docker. The process environment comes in through [`Request`].
//!
//! Files: [`files`] (several files as one virtual text with spans), [`interpolate`], [`merge`],
//! [`keys`] (what is read, ignored or refused), [`service`] (one service), [`topology`]
//! (dependencies, networks, volumes, profiles across services).

mod files;
mod interpolate;
mod keys;
mod merge;
mod service;
mod topology;

use std::path::{Path, PathBuf};

use indexmap::IndexMap;

use self::files::Sources;
use crate::scenario::Diagnostic;
use crate::scenario::model::Service;
use crate::scenario::read::Reader;
use crate::scenario::report::{Problems, Span};
use crate::scenario::tree::{Node, Value};

/// What to load.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// The compose files, in `-f` order (relative paths are relative to the working directory;
    /// the scenario resolves them against its own folder first).
    pub files: Vec<PathBuf>,
    /// Profiles to enable (`--profile`); services without `profiles` always run.
    pub profiles: Vec<String>,
    /// Variables for `${VAR}` (the process environment); they win over the `.env` file.
    pub environment: IndexMap<String, String>,
}

/// A compose stack read into firedrill's model.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ComposeStack {
    /// The project name (the first file's folder, as compose derives it, or `name:`).
    pub project: String,
    /// The active services, in file order.
    pub services: IndexMap<String, ComposeService>,
    /// Warnings (`FILE:LINE:COL: message`): ignored keys, unset variables.
    pub warnings: Vec<String>,
}

/// One compose service and what `firedrill init` wants to know about it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ComposeService {
    /// The service as firedrill runs it.
    pub service: Service,
    /// `depends_on`, with conditions.
    pub depends_on: Vec<(String, Condition)>,
    /// Whether it has `build:` (an upgrade can build a new version from it).
    pub has_build: bool,
    /// Container ports from `ports:` (not `expose:`).
    pub published: Vec<u16>,
}

/// `depends_on.*.condition`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    /// `service_started`: firedrill still waits for the dependency's health when it has one.
    Started,
    /// `service_healthy`.
    Healthy,
}

/// Why a compose stack could not be loaded.
#[derive(Debug)]
pub enum ComposeError {
    /// File `index` of the request could not be read.
    Read {
        /// Which file of the request.
        index: usize,
        /// The error.
        error: std::io::Error,
    },
    /// The files have mistakes, each placed in its file.
    Invalid {
        /// Every mistake, in file order.
        diagnostics: Vec<Diagnostic>,
        /// The service names the files declare (as far as they could be read), so that a
        /// scenario naming them is not blamed for the compose file's mistakes.
        services: Vec<String>,
    },
}

/// Load and map a compose stack.
pub fn load(request: &Request) -> Result<ComposeStack, ComposeError> {
    let mut sources = Sources::default();
    let mut problems = Problems::default();
    let mut merged: Option<Node> = None;
    for (index, path) in request.files.iter().enumerate() {
        let text =
            fs_err::read_to_string(path).map_err(|error| ComposeError::Read { index, error })?;
        match sources.add(path.display().to_string(), text) {
            Ok(Some(mut root)) => match &mut merged {
                None => {
                    merge::resolve_merge_keys(&mut root);
                    merged = Some(root);
                }
                Some(base) => {
                    merge::resolve_merge_keys(&mut root);
                    merge::merge_roots(base, &root);
                }
            },
            Ok(None) => {}
            Err(found) => {
                for problem in found {
                    let p = problems.error(problem.span, problem.message, problem.label);
                    p.help = problem.help;
                }
            }
        }
    }
    if !problems.is_empty() {
        let services = merged.as_ref().map(declared_services).unwrap_or_default();
        return Err(ComposeError::Invalid { diagnostics: sources.diagnostics(problems), services });
    }
    let first = request.files.first().map(PathBuf::as_path).unwrap_or(Path::new("."));
    let folder = match first.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut variables = IndexMap::new();
    let mut warnings = Vec::new();
    let dotenv = folder.join(".env");
    if let Ok(text) = fs_err::read_to_string(&dotenv) {
        let (vars, bad) = interpolate::dotenv(&text);
        for interpolate::BadLine(line) in bad {
            warnings.push(format!(
                "{}:{}:1: not a `KEY=VALUE` line; it is ignored",
                dotenv.display(),
                line + 1
            ));
        }
        variables.extend(vars);
    }
    variables.extend(request.environment.clone());

    let Some(mut root) = merged else {
        let mut r = Reader::new(&sources.virtual_text, |_| None);
        r.error(Span::default(), "the compose file is empty", "nothing here")
            .help("a compose file needs `services`");
        return Err(ComposeError::Invalid {
            diagnostics: sources.diagnostics(r.problems),
            services: Vec::new(),
        });
    };
    let mut r = Reader::new(&sources.virtual_text, |_| None);
    let mut raw_warnings: Vec<(Span, String)> = Vec::new();
    interpolate_tree(&mut root, &variables, &mut r, &mut raw_warnings);

    let project = project_name(&root, &folder);
    let mut walk = service::ComposeWalk {
        r,
        warnings: raw_warnings,
        folder,
        project: project.clone(),
        variables,
    };
    let services = walk.stack(&root, &request.profiles);
    let service::ComposeWalk { r, warnings: raw, .. } = walk;
    let mut raw = raw;
    raw.sort_by_key(|(span, _)| span.start);
    warnings
        .extend(raw.into_iter().map(|(span, text)| format!("{}: {text}", sources.position(span))));
    match services {
        Some(services) if r.problems.is_empty() => Ok(ComposeStack { project, services, warnings }),
        _ => {
            assert!(!r.problems.is_empty(), "a compose part was rejected without saying why");
            Err(ComposeError::Invalid {
                diagnostics: sources.diagnostics(r.problems),
                services: declared_services(&root),
            })
        }
    }
}

/// The keys of `services`, whatever their content.
fn declared_services(root: &Node) -> Vec<String> {
    let Value::Map(entries) = &root.value else { return Vec::new() };
    entries
        .iter()
        .filter(|e| e.key.scalar().is_some_and(|k| k.text == "services"))
        .flat_map(|e| match &e.value.value {
            Value::Map(services) => {
                services.iter().filter_map(|s| s.key.scalar().map(|k| k.text.clone())).collect()
            }
            _ => Vec::new(),
        })
        .collect()
}

/// `name:` or the first file's folder name, lowercased, keeping `a-z 0-9 - _` (as compose does).
fn project_name(root: &Node, folder: &Path) -> String {
    let written = match &root.value {
        Value::Map(entries) => entries
            .iter()
            .find(|e| e.key.scalar().is_some_and(|k| k.text == "name"))
            .and_then(|e| e.value.scalar())
            .map(|s| s.text.clone()),
        _ => None,
    };
    let base = written.unwrap_or_else(|| {
        fs_err::canonicalize(folder)
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_default()
    });
    let name: String = base
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    if name.is_empty() { "default".to_owned() } else { name }
}

/// Interpolate every scalar value (not keys) in place; errors go to the reader, unset variables
/// to the warnings.
fn interpolate_tree(
    node: &mut Node,
    variables: &IndexMap<String, String>,
    r: &mut Reader<'_>,
    warnings: &mut Vec<(Span, String)>,
) {
    match &mut node.value {
        Value::Scalar(scalar) => {
            if !scalar.text.contains('$') {
                return;
            }
            let (text, mistakes) = interpolate::interpolate(&scalar.text, variables);
            let at = |range: std::ops::Range<usize>| match scalar.verbatim_at {
                Some(start) => Span::new(start + range.start, start + range.end),
                None => node.span,
            };
            for mistake in mistakes {
                let span = at(mistake.range.clone());
                if mistake.warning {
                    warnings.push((span, mistake.message));
                } else {
                    r.error(span, mistake.message, "interpolation")
                        .help("write `$$` for a literal `$`; set variables in the environment or in `.env` beside the compose file");
                }
            }
            if text != scalar.text {
                scalar.text = text;
                scalar.verbatim_at = None;
            }
        }
        Value::Seq(items) => {
            for item in items {
                interpolate_tree(item, variables, r, warnings);
            }
        }
        Value::Map(entries) => {
            for entry in entries {
                interpolate_tree(&mut entry.value, variables, r, warnings);
            }
        }
    }
}
