//! Building a `build:` image: run `prepare`, make sure every base image is local, then build the
//! context with the engine's legacy builder and stream its output.
//!
//! The legacy builder (the only one an API 1.41 engine without buildx offers through `/build`)
//! pulls a missing `FROM` image on its own, without credentials or a say for the pull policy, so
//! the Dockerfile's `FROM` (and `COPY --from=IMAGE`) lines are read first: a missing base is
//! pulled here (pull policy `missing` or `always`), or fails the build before the daemon sees it,
//! naming the image (`never`).

use std::collections::{HashMap, VecDeque};
use std::process::Stdio;

use futures_util::StreamExt;
use testcontainers::bollard::query_parameters::BuildImageOptionsBuilder;
use testcontainers::bollard::{self, body_full};
use tokio::io::{AsyncBufReadExt, BufReader};

use super::error::MISSING_BASE_PREFIX;
use super::{Docker, StackError, context};
use crate::scenario::model::{BuildSpec, PullPolicy};

/// How many output lines an error carries.
const TAIL_LINES: usize = 20;

/// The label that holds the fingerprint of the context an image was built from.
pub(crate) const FINGERPRINT_LABEL: &str = "firedrill.context";

/// A build context that is prepared and packed, ready to build.
pub(crate) struct Prepared {
    archive: Vec<u8>,
    build_args: HashMap<String, String>,
    /// Of the context's content, the Dockerfile's name and the build arguments.
    pub fingerprint: String,
}

/// Build `spec` unconditionally.
pub(crate) async fn build(
    docker: &Docker,
    spec: &BuildSpec,
    pull: PullPolicy,
    progress: &mut (dyn FnMut(&str) + Send),
) -> Result<(), StackError> {
    let _lock = lock_context(spec, progress).await?;
    let prepared = prepare_context(docker, spec, pull, progress).await?;
    build_prepared(docker, spec, prepared, progress).await
}

/// An exclusive hold on one build context, shared by every firedrill process on the machine:
/// released when dropped (or when the process dies, the kernel's doing).
pub(crate) struct ContextLock {
    _dir: std::fs::File,
}

/// Lock `spec`'s context folder for `prepare`, fingerprinting and building, so that two runs
/// sharing a context (two scenarios started side by side, a CI matrix) never pack it while the
/// other's `prepare` writes into it, nor build it twice at once.
///
/// The lock is `flock(2)` on the context folder itself: keyed by the folder whatever path names
/// it (symlinks, relative paths, another checkout's scenario), machine-wide whatever state folder
/// each process uses, no lock file to leave behind, and released by the kernel when a holder is
/// killed.
pub(crate) async fn lock_context(
    spec: &BuildSpec,
    progress: &mut (dyn FnMut(&str) + Send),
) -> Result<ContextLock, StackError> {
    let lock_error = |reason: String| StackError::Build {
        image: spec.tag.clone(),
        reason: format!("cannot lock the build context `{}`: {reason}", spec.context.display()),
    };
    let dir = std::fs::File::open(&spec.context).map_err(|e| lock_error(e.to_string()))?;
    match flock(&dir, libc::LOCK_EX | libc::LOCK_NB) {
        Ok(()) => return Ok(ContextLock { _dir: dir }),
        Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {}
        Err(error) => return Err(lock_error(error.to_string())),
    }
    progress(&format!(
        "waiting for another firedrill process that prepares or builds `{}`",
        spec.context.display()
    ));
    // Dropping this future (an interrupted run) leaves the thread waiting; once it gets the
    // lock, the dropped result closes the file and so releases it at once.
    tokio::task::spawn_blocking(move || {
        flock(&dir, libc::LOCK_EX).map(|()| ContextLock { _dir: dir })
    })
    .await
    .map_err(|e| lock_error(format!("waiting for the lock panicked: {e}")))?
    .map_err(|e| lock_error(e.to_string()))
}

/// `flock(2)`, retried when a signal interrupts it.
fn flock(file: &std::fs::File, operation: libc::c_int) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    loop {
        // SAFETY: the descriptor is open for as long as `file` is borrowed; flock takes no
        // pointers.
        if unsafe { libc::flock(file.as_raw_fd(), operation) } == 0 {
            return Ok(());
        }
        let error = std::io::Error::last_os_error();
        if error.kind() != std::io::ErrorKind::Interrupted {
            return Err(error);
        }
    }
}

/// Run `prepare`, make sure the `FROM` images are local (pulling the missing ones unless `pull`
/// is `never`), and pack the context.
pub(crate) async fn prepare_context(
    docker: &Docker,
    spec: &BuildSpec,
    pull: PullPolicy,
    progress: &mut (dyn FnMut(&str) + Send),
) -> Result<Prepared, StackError> {
    if let Some(command) = &spec.prepare {
        prepare(spec, command, progress).await?;
    }
    let build_error = |reason: String| StackError::Build { image: spec.tag.clone(), reason };

    let dockerfile_path = spec.context.join(&spec.dockerfile);
    let dockerfile = fs_err::read_to_string(&dockerfile_path)
        .map_err(|e| build_error(format!("cannot read the Dockerfile: {e}")))?;
    let build_args: HashMap<String, String> =
        spec.args.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    for base in external_images(&dockerfile, &build_args).map_err(build_error)? {
        if !docker.image_exists(&base.reference).await? {
            if pull != PullPolicy::Never {
                let bar = super::PullBar::new(&base.reference);
                let pulled =
                    super::pull::pull(docker, &base.reference, &mut |p| bar.show(p)).await?;
                progress(&format!("pulled base image {} ({})", base.reference, pulled.digest));
                continue;
            }
            return Err(build_error(format!(
                "{MISSING_BASE_PREFIX}{}` ({}:{}) is not in the local image store, and firedrill \
                 never pulls; build or load `{}` first",
                base.reference, spec.dockerfile, base.line, base.reference
            )));
        }
    }

    let context_dir = spec.context.clone();
    let dockerfile_name = spec.dockerfile.clone();
    let packed =
        tokio::task::spawn_blocking(move || context::pack_context(&context_dir, &dockerfile_name))
            .await
            .map_err(|e| build_error(format!("packing the build context panicked: {e}")))?
            .map_err(|e| {
                build_error(format!(
                    "cannot pack the build context `{}`: {e}",
                    spec.context.display()
                ))
            })?;
    let mut fingerprint = context::Fnv(packed.fingerprint);
    fingerprint.write(spec.dockerfile.as_bytes());
    if let Some(target) = &spec.target {
        fingerprint.write(target.as_bytes());
    }
    for (key, value) in &spec.args {
        fingerprint.write(key.as_bytes());
        fingerprint.write(value.as_bytes());
    }
    Ok(Prepared {
        archive: packed.archive,
        build_args,
        fingerprint: format!("{:016x}", fingerprint.0),
    })
}

/// Build a prepared context, labelling the image with its fingerprint.
pub(crate) async fn build_prepared(
    docker: &Docker,
    spec: &BuildSpec,
    prepared: Prepared,
    progress: &mut (dyn FnMut(&str) + Send),
) -> Result<(), StackError> {
    let build_error = |reason: String| StackError::Build { image: spec.tag.clone(), reason };
    let Prepared { archive, build_args, fingerprint } = prepared;
    let labels = HashMap::from([(FINGERPRINT_LABEL, fingerprint)]);
    let mut options = BuildImageOptionsBuilder::default()
        .dockerfile(&spec.dockerfile)
        .t(&spec.tag)
        .rm(true)
        .forcerm(true)
        .buildargs(&build_args)
        .labels(&labels);
    if let Some(target) = &spec.target {
        options = options.target(target);
    }
    let options = options.build();
    let mut stream = docker.client().build_image(options, None, Some(body_full(archive.into())));
    let mut tail = Tail::default();
    let mut partial = String::new();
    while let Some(item) = stream.next().await {
        match item {
            Ok(info) => {
                if let Some(text) = info.stream {
                    partial.push_str(&text);
                    while let Some(newline) = partial.find('\n') {
                        let line: String = partial.drain(..=newline).collect();
                        let line = line.trim_end();
                        if !line.is_empty() {
                            progress(line);
                            tail.push(line);
                        }
                    }
                }
            }
            Err(error) => {
                if !partial.trim().is_empty() {
                    progress(partial.trim_end());
                    tail.push(partial.trim_end());
                }
                let message = match error {
                    bollard::errors::Error::DockerStreamError { error } => error,
                    other => other.to_string(),
                };
                return Err(build_error(tail.with_message(message.trim_end())));
            }
        }
    }
    if !partial.trim().is_empty() {
        progress(partial.trim_end());
    }
    Ok(())
}

/// Run `prepare` in the context folder, streaming its output lines.
async fn prepare(
    spec: &BuildSpec,
    command: &[String],
    progress: &mut (dyn FnMut(&str) + Send),
) -> Result<(), StackError> {
    let prepare_error = |reason: String| StackError::Prepare { image: spec.tag.clone(), reason };
    let (program, args) =
        command.split_first().ok_or_else(|| prepare_error("the command is empty".to_owned()))?;
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .current_dir(&spec.context)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| {
            prepare_error(format!("cannot run `{program}` in `{}`: {e}", spec.context.display()))
        })?;
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout is piped")).lines();
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr is piped")).lines();
    let mut tail = Tail::default();
    let (mut out_open, mut err_open) = (true, true);
    while out_open || err_open {
        // `next_line` is cancel-safe, so losing the race loses no line.
        let (from_stdout, line) = tokio::select! {
            line = stdout.next_line(), if out_open => (true, line),
            line = stderr.next_line(), if err_open => (false, line),
        };
        match line {
            Ok(Some(line)) => {
                progress(&line);
                tail.push(&line);
            }
            Ok(None) if from_stdout => out_open = false,
            Ok(None) => err_open = false,
            Err(error) => {
                tail.push(&format!("(reading the output failed: {error})"));
                break;
            }
        }
    }
    let status = child
        .wait()
        .await
        .map_err(|e| prepare_error(format!("waiting for `{program}` failed: {e}")))?;
    if status.success() {
        Ok(())
    } else {
        Err(prepare_error(
            tail.with_message(&format!("`{}` exited with {status}", command.join(" "))),
        ))
    }
}

/// The last lines of some output, for error messages.
#[derive(Default)]
struct Tail {
    lines: VecDeque<String>,
}

impl Tail {
    fn push(&mut self, line: &str) {
        if self.lines.len() == TAIL_LINES {
            self.lines.pop_front();
        }
        self.lines.push_back(line.to_owned());
    }

    fn with_message(&self, message: &str) -> String {
        if self.lines.is_empty() {
            return message.to_owned();
        }
        let mut text = format!("{message}; last output lines:");
        for line in &self.lines {
            text.push_str("\n  ");
            text.push_str(line);
        }
        text
    }
}

/// An image a Dockerfile needs from the image store.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct ExternalImage {
    /// The reference, variables substituted.
    pub(crate) reference: String,
    /// 1-based line of the instruction.
    pub(crate) line: usize,
}

/// Every image a Dockerfile takes from outside itself: `FROM` that is not `scratch` or an earlier
/// stage, and `COPY --from=` naming neither a stage nor a stage index. Variables in `FROM` come
/// from the `ARG`s before the first `FROM` and the build arguments.
pub(crate) fn external_images(
    dockerfile: &str,
    build_args: &HashMap<String, String>,
) -> Result<Vec<ExternalImage>, String> {
    let mut args: HashMap<String, String> = HashMap::new();
    let mut stages: Vec<String> = Vec::new();
    let mut seen_from = false;
    let mut images: Vec<ExternalImage> = Vec::new();
    for (line, instruction) in instructions(dockerfile) {
        let mut words = instruction.split_whitespace();
        let Some(keyword) = words.next() else { continue };
        let words: Vec<&str> = words.collect();
        match keyword.to_ascii_lowercase().as_str() {
            "arg" if !seen_from => {
                for word in words {
                    let (name, default) = match word.split_once('=') {
                        Some((name, default)) => (name, Some(unquote(default))),
                        None => (word, None),
                    };
                    let value = build_args.get(name).cloned().or(default);
                    if let Some(value) = value {
                        args.insert(name.to_owned(), value);
                    }
                }
            }
            "from" => {
                seen_from = true;
                let mut words = words.iter().filter(|w| !w.starts_with("--"));
                let Some(raw) = words.next() else {
                    return Err(format!("line {line}: `FROM` names no image"));
                };
                let reference = substitute(raw, &args).map_err(|e| format!("line {line}: {e}"))?;
                // Only earlier stages count: `FROM x AS x` still means the image `x`.
                let is_stage = stages.contains(&reference.to_ascii_lowercase());
                if let (Some(as_word), Some(name)) = (words.next(), words.next()) {
                    if as_word.eq_ignore_ascii_case("as") {
                        stages.push(name.to_ascii_lowercase());
                    }
                }
                if reference.eq_ignore_ascii_case("scratch") || is_stage {
                    continue;
                }
                push_unique(&mut images, reference, line);
            }
            "copy" => {
                for word in words.iter().take_while(|w| w.starts_with("--")) {
                    let Some(source) = word.strip_prefix("--from=") else { continue };
                    let is_index = source.parse::<usize>().is_ok();
                    if is_index || stages.contains(&source.to_ascii_lowercase()) {
                        continue;
                    }
                    push_unique(&mut images, source.to_owned(), line);
                }
            }
            _ => {}
        }
    }
    Ok(images)
}

fn push_unique(images: &mut Vec<ExternalImage>, reference: String, line: usize) {
    if !images.iter().any(|image| image.reference == reference) {
        images.push(ExternalImage { reference, line });
    }
}

/// Logical instructions with their first line: comments dropped, `\` continuations joined.
fn instructions(dockerfile: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (index, raw) in dockerfile.lines().enumerate() {
        let trimmed = raw.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && current.is_none()) {
            continue;
        }
        let (text, continues) = match trimmed.strip_suffix('\\') {
            Some(text) => (text, true),
            None => (trimmed, false),
        };
        let entry = current.get_or_insert_with(|| (index + 1, String::new()));
        entry.1.push(' ');
        entry.1.push_str(text);
        if !continues {
            out.extend(current.take());
        }
    }
    out.extend(current);
    out
}

fn unquote(value: &str) -> String {
    let value = value.trim();
    for quote in ['"', '\''] {
        if let Some(inner) = value.strip_prefix(quote).and_then(|v| v.strip_suffix(quote)) {
            return inner.to_owned();
        }
    }
    value.to_owned()
}

/// `$NAME`, `${NAME}`, `${NAME:-default}`, `${NAME:+alternative}`; an unknown variable is an
/// error, since guessing could send the daemon to a registry.
fn substitute(text: &str, args: &HashMap<String, String>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(dollar) = rest.find('$') {
        out.push_str(&rest[..dollar]);
        let after = &rest[dollar + 1..];
        let (expression, remainder) = if let Some(braced) = after.strip_prefix('{') {
            let close = braced.find('}').ok_or_else(|| format!("unclosed `${{` in `{text}`"))?;
            (&braced[..close], &braced[close + 1..])
        } else {
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            (&after[..end], &after[end..])
        };
        let (name, modifier) = match expression.find(":-").or_else(|| expression.find(":+")) {
            Some(at) => (&expression[..at], Some((&expression[at..at + 2], &expression[at + 2..]))),
            None => (expression, None),
        };
        let value = args.get(name).filter(|v| !v.is_empty());
        let resolved = match (modifier, value) {
            (Some((":-", _)), Some(value)) | (None, Some(value)) => value.clone(),
            (Some((":-", default)), None) => default.to_owned(),
            (Some((_, alternative)), Some(_)) => alternative.to_owned(),
            (Some(_), None) => String::new(),
            (None, None) => {
                return Err(format!(
                    "`{text}` uses `${name}`, which no `ARG` before the first `FROM` or build \
                     argument sets"
                ));
            }
        };
        out.push_str(&resolved);
        rest = remainder;
    }
    out.push_str(rest);
    if out.is_empty() {
        return Err(format!("`{text}` names no image once its variables are substituted"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refs(dockerfile: &str, args: &[(&str, &str)]) -> Vec<String> {
        let args = args.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        external_images(dockerfile, &args)
            .expect("parses")
            .into_iter()
            .map(|image| image.reference)
            .collect()
    }

    #[test]
    fn finds_bases_skipping_stages_and_scratch() {
        let dockerfile = "\
# syntax is never used here
ARG BASE=firedrill-demo/base:bookworm
FROM --platform=linux/amd64 ${BASE} AS build
RUN make
FROM scratch
COPY --from=build /app /app
COPY --from=0 /x /x
COPY --chown=1:1 --from=tools/helper:1 /bin/h /h
FROM Build
";
        assert_eq!(refs(dockerfile, &[]), ["firedrill-demo/base:bookworm", "tools/helper:1"]);
    }

    #[test]
    fn build_args_override_arg_defaults_and_continuations_join() {
        let dockerfile = "ARG TAG=1\nFROM \\\n  demo/app:$TAG\n";
        assert_eq!(refs(dockerfile, &[("TAG", "2")]), ["demo/app:2"]);
        let images = external_images(dockerfile, &HashMap::new()).expect("parses");
        assert_eq!(images[0].line, 2);
    }

    #[test]
    fn unknown_variables_are_errors_not_guesses() {
        let error = external_images("FROM $NOPE\n", &HashMap::new()).expect_err("unknown");
        assert!(error.contains("$NOPE"), "{error}");
        assert_eq!(refs("FROM ${NOPE:-x/y:1}\n", &[]), ["x/y:1"]);
    }
}
