//! `firedrill init --compose FILE [--output SCENARIO]`: a starter scenario for a compose stack
//! that runs and passes as written — steady-state probes from the healthchecks and published
//! ports, one wait step, checks that hold on a healthy stack — plus one commented example of each
//! step family (kill and start, a link fault on a real `depends_on` edge, an upgrade of a service
//! that has `build:`). Prints what it inferred and what is left to fill in.
//!
//! Commented examples are lines starting with `# ` (prose starts with `## `), so that removing
//! the `# ` from every such line gives a valid scenario too (a test checks that).

use std::fmt::Write as _;
use std::path::{Component, Path, PathBuf};

use super::errors::ExitStatus;
use crate::scenario::compose::{self, ComposeError, ComposeStack, Request};
use crate::scenario::model::{HealthKind, ImageSource};

/// How long the generated scenario watches the healthy stack.
const SETTLE: &str = "5s";

/// Run `firedrill init`.
pub fn init(
    files: &[PathBuf],
    output: Option<&Path>,
    profiles: &[String],
    color: bool,
) -> ExitStatus {
    let request = Request {
        files: files.to_vec(),
        profiles: profiles.to_vec(),
        environment: std::env::vars().collect(),
    };
    let stack = match compose::load(&request) {
        Ok(stack) => stack,
        Err(ComposeError::Read { index, error }) => {
            eprintln!("error: cannot read `{}`: {error}", files[index].display());
            eprintln!("hint: pass the compose file with `--compose FILE`");
            return ExitStatus::Error;
        }
        Err(ComposeError::Invalid { diagnostics, .. }) => {
            let file = files[0].display().to_string();
            let invalid = crate::scenario::Invalid { file, diagnostics };
            eprint!("{}", crate::scenario::render(&invalid, color));
            return ExitStatus::Error;
        }
    };
    for warning in &stack.warnings {
        eprintln!("warning: {warning}");
    }
    let output = output
        .map(Path::to_path_buf)
        .unwrap_or_else(|| files[0].parent().unwrap_or(Path::new(".")).join("firedrill.yaml"));
    if output.exists() {
        eprintln!(
            "error: `{}` exists already; firedrill init does not overwrite",
            output.display()
        );
        eprintln!("hint: choose another file with `--output SCENARIO`, or remove it");
        return ExitStatus::Error;
    }
    let folder = output.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let compose_paths: Vec<String> =
        files.iter().map(|file| relative_to(file, folder).display().to_string()).collect();
    let (text, notes) = starter(&stack, &compose_paths, profiles, |path| {
        relative_to(path, folder).display().to_string()
    });
    if let Err(error) = fs_err::write(&output, &text) {
        eprintln!("error: {error}");
        return ExitStatus::Error;
    }
    eprintln!("wrote {}", output.display());
    for note in notes {
        eprintln!("{note}");
    }
    eprintln!("next: firedrill run --report firedrill-report {}", output.display());
    ExitStatus::Success
}

/// The scenario text and what to tell the user (`inferred: ...`, `fill in: ...`).
pub(crate) fn starter(
    stack: &ComposeStack,
    compose_paths: &[String],
    profiles: &[String],
    relative: impl Fn(&Path) -> String,
) -> (String, Vec<String>) {
    let mut notes = Vec::new();
    let mut out = String::new();
    let name = scenario_name(&stack.project);
    let w = &mut out;
    let _ = writeln!(
        w,
        "## Starter rehearsal for the compose project `{}`, written by `firedrill init`.",
        stack.project
    );
    let _ = writeln!(
        w,
        "## It brings the stack up, checks it answers, watches it for {SETTLE} and checks again."
    );
    let _ = writeln!(w, "## Lines starting with `# ` are examples: remove the `# ` to use one.");
    let _ = writeln!(w, "name: {name}");
    let _ = writeln!(
        w,
        "description: Steady state of `{}` before and after a quiet period.",
        stack.project
    );
    let _ = writeln!(w, "stack:");
    if let [only] = compose_paths {
        let _ = writeln!(w, "  compose: {}", quote(only));
    } else {
        let list: Vec<String> = compose_paths.iter().map(|p| quote(p)).collect();
        let _ = writeln!(w, "  compose: [{}]", list.join(", "));
    }
    if !profiles.is_empty() {
        let _ = writeln!(w, "  profiles: [{}]", profiles.join(", "));
    }

    // A dependency edge with a port on the dependency: the link example.
    let edge = stack.services.iter().find_map(|(name, compose)| {
        compose.depends_on.iter().find_map(|(dependency, _)| {
            let port = stack.services.get(dependency)?.service.ports.first()?;
            Some((name.clone(), dependency.clone(), *port))
        })
    });
    let link_name = edge.as_ref().map(|(from, to, _)| format!("{from}-{to}"));
    // A service without a healthcheck counts as ready once it runs, before it listens: give the
    // ones with a port a TCP health check, so bring-up waits until they accept connections.
    let tcp_health: Vec<(String, u16)> = stack
        .services
        .iter()
        .filter(|(_, c)| c.service.health.is_none())
        .filter_map(|(name, c)| Some((name.clone(), *c.service.ports.first()?)))
        .collect();
    let _ = writeln!(
        w,
        "  ## Add to or override compose services here (health checks, backup/restore hooks):"
    );
    if tcp_health.is_empty() {
        let _ = writeln!(w, "  # services:");
        match stack.services.iter().find(|(_, c)| c.service.health.is_none()) {
            Some((service, _)) => {
                let _ = writeln!(w, "  #   {service}:");
                let _ = writeln!(
                    w,
                    "  #     health: {{ exec: [\"true\"] }}   ## replace with a real check"
                );
            }
            None => {
                let (service, _) = stack.services.first().expect("a stack has services");
                let _ = writeln!(w, "  #   {service}:");
                let _ = writeln!(w, "  #     startup-timeout: 2m");
            }
        }
    } else {
        let _ = writeln!(w, "  services:");
        for (service, port) in &tcp_health {
            let _ = writeln!(w, "    {service}:");
            let _ = writeln!(
                w,
                "      ## No healthcheck in the compose file: ready once port {port} accepts connections."
            );
            let _ = writeln!(
                w,
                "      ## A connect alone proves little (a frozen service still accepts): prefer an exchange,\n      ## e.g. `send: \"PING\\r\\n\"` and `expect: \"+PONG\"`, or an http/exec check."
            );
            let _ = writeln!(
                w,
                "      health: {{ tcp: {{ port: {port}, connect-is-enough: true }}, interval: 250ms }}"
            );
            let _ = writeln!(w, "      # startup-timeout: 2m");
            notes.push(format!("inferred: `{service}` has no healthcheck: a tcp health check on port {port} (fill in: an http or exec check says more)"));
        }
    }
    if let (Some((from, to, port)), Some(link)) = (&edge, &link_name) {
        let _ = writeln!(
            w,
            "  ## `{from}` depends on `{to}`: route it through firedrill's fault proxy to rehearse link faults."
        );
        let _ = writeln!(
            w,
            "  ## The link only carries what `{from}` sends to `{{{{ links.{link}.addr }}}}`: point `{from}`'s"
        );
        let _ = writeln!(w, "  ## setting for `{to}:{port}` at it under `services.{from}.env`.");
        let _ = writeln!(w, "  # links:");
        let _ = writeln!(w, "  #   {link}: {from} -> {to}:{port}");
        notes.push(format!(
            "inferred: link example `{link}` from `{from}` depends_on `{to}` (port {port})"
        ));
    }

    // Steady state: HTTP probes where a healthcheck calls a local URL on a declared port, TCP
    // probes on the other published ports.
    let mut probes = Vec::new();
    for (service, compose) in &stack.services {
        let http = compose.service.health.as_ref().and_then(|health| match &health.kind {
            HealthKind::Exec { command } => local_url(&command.join(" ")),
            _ => None,
        });
        let mut probed = Vec::new();
        if let Some((port, path)) = http
            && compose.service.ports.contains(&port)
        {
            probes.push(format!(
                "  - name: {service} answers {path}\n    http: {{ service: {service}, port: {port}, path: {path} }}"
            ));
            notes.push(format!("inferred: http probe {service}:{port}{path} from its healthcheck"));
            probed.push(port);
        }
        for port in &compose.published {
            if probed.contains(port) {
                continue;
            }
            probes.push(format!(
                "  - name: {service} accepts connections on {port}\n    tcp: {{ service: {service}, port: {port}, connect-is-enough: true }}"
            ));
            notes.push(format!(
                "inferred: tcp probe {service}:{port} from `ports`, connect only (fill in: `send`/`expect` or an http probe says more)"
            ));
        }
    }
    if !probes.is_empty() {
        let _ = writeln!(w, "steady-state:");
        for probe in &probes {
            let _ = writeln!(w, "{probe}");
        }
    }

    let _ = writeln!(w, "steps:");
    let _ = writeln!(w, "  - name: settle");
    let _ = writeln!(w, "    wait: {SETTLE}");
    // Kill and start: the first service with a healthcheck (its recovery is observable).
    let target = stack
        .services
        .iter()
        .find(|(_, c)| c.service.health.is_some())
        .or_else(|| stack.services.first())
        .map(|(name, _)| name.clone())
        .expect("a stack has services");
    let _ = writeln!(w, "  ## Kill and start a service:");
    let _ = writeln!(w, "  # - name: kill {target}");
    let _ = writeln!(w, "  #   kill: {{ service: {target}, signal: SIGKILL }}");
    let _ = writeln!(w, "  # - name: start {target}");
    let _ = writeln!(w, "  #   start: {{ service: {target} }}");
    if let Some(link) = &link_name {
        let _ = writeln!(w, "  ## A link fault (needs `links:` above):");
        let _ = writeln!(w, "  # - name: slow {link}");
        let _ = writeln!(w, "  #   latency: {{ link: {link}, latency: 300ms, for: 10s }}");
    } else {
        let _ = writeln!(
            w,
            "  ## No `depends_on` edge to a service with a port: no link fault example."
        );
    }
    let built = stack.services.iter().find(|(_, c)| c.has_build);
    match built {
        Some((service, compose)) => {
            let ImageSource::Build(build) = &compose.service.image else {
                unreachable!("has_build")
            };
            let strategy = if compose.service.replicas > 1 { "rolling" } else { "recreate" };
            let _ = writeln!(
                w,
                "  ## Upgrade `{service}` to a new build (change the tag and what differs):"
            );
            let _ = writeln!(w, "  # - name: upgrade {service}");
            let _ = writeln!(w, "  #   upgrade:");
            let _ = writeln!(w, "  #     service: {service}");
            let _ = writeln!(
                w,
                "  #     build: {{ context: {}, tag: {} }}",
                quote(&relative(&build.context)),
                quote(&format!("{}-next", build.tag))
            );
            let _ = writeln!(w, "  #     strategy: {strategy}");
            let _ = writeln!(w, "  #     deadline: 60s");
            notes.push(format!("fill in: the upgrade example builds `{service}` again as `{}-next`: change what the new version is", build.tag));
        }
        None => {
            let (service, compose) = stack.services.first().expect("a stack has services");
            let _ = writeln!(w, "  ## No service has `build:`; an upgrade to another local image:");
            let _ = writeln!(w, "  # - name: upgrade {service}");
            let _ = writeln!(
                w,
                "  #   upgrade: {{ service: {service}, image: {}, deadline: 60s }}",
                quote(compose.service.image.reference())
            );
        }
    }

    let mut checks = Vec::new();
    if !probes.is_empty() {
        checks.push("  - steady-state: before".to_owned());
        checks.push("  - steady-state: after".to_owned());
    }
    let healthy: Vec<&String> = stack
        .services
        .iter()
        .filter(|(name, c)| {
            c.service.health.is_some() || tcp_health.iter().any(|(s, _)| s == *name)
        })
        .map(|(n, _)| n)
        .collect();
    for service in &healthy {
        checks.push(format!("  - healthy-throughout: {{ service: {service}, step: settle }}"));
        notes.push(format!("inferred: `{service}` stays healthy (from its healthcheck)"));
    }
    if checks.is_empty() {
        let _ = writeln!(w, "expect: []");
    } else {
        let _ = writeln!(w, "expect:");
        for check in &checks {
            let _ = writeln!(w, "{check}");
        }
    }
    let _ = writeln!(w, "  ## With the kill example:");
    let _ = writeln!(
        w,
        "  # - healthy-within: {{ service: {target}, after: start {target}, within: 30s }}"
    );
    if checks.is_empty() {
        notes.push("fill in: no healthcheck and no published port: add a `health:` under `stack.services` or a probe".to_owned());
    }
    for (service, compose) in &stack.services {
        if compose.service.health.is_none() && !tcp_health.iter().any(|(s, _)| s == service) {
            notes.push(format!(
                "fill in: `{service}` has no healthcheck, so it counts as ready once it runs"
            ));
        }
    }
    (out, notes)
}

/// `http://localhost:PORT/PATH` or `127.0.0.1` in a healthcheck command.
fn local_url(command: &str) -> Option<(u16, String)> {
    for host in ["http://localhost:", "http://127.0.0.1:"] {
        if let Some(at) = command.find(host) {
            let rest = &command[at + host.len()..];
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            let port: u16 = digits.parse().ok()?;
            let after = &rest[digits.len()..];
            let path: String = after
                .chars()
                .take_while(|c| {
                    !c.is_whitespace() && !matches!(c, '"' | '\'' | ';' | '|' | '&' | ')')
                })
                .collect();
            let path = if path.starts_with('/') { path } else { "/".to_owned() };
            return Some((port, path));
        }
    }
    None
}

fn scenario_name(project: &str) -> String {
    let base: String = project
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' })
        .collect();
    let base = base.trim_matches('-');
    let base = if base.is_empty() || !base.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        "stack"
    } else {
        base
    };
    format!("{base}-rehearsal")
}

fn quote(text: &str) -> String {
    if text.chars().all(|c| c.is_ascii_alphanumeric() || "./_-:".contains(c))
        && !text.starts_with('-')
    {
        text.to_owned()
    } else {
        format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

/// `path` relative to `folder` (both made absolute first), with `..` where needed.
fn relative_to(path: &Path, folder: &Path) -> PathBuf {
    let absolute = |p: &Path| {
        fs_err::canonicalize(p)
            .unwrap_or_else(|_| std::path::absolute(p).unwrap_or(p.to_path_buf()))
    };
    let path = absolute(path);
    let folder = absolute(folder);
    let path_parts: Vec<Component> = path.components().collect();
    let folder_parts: Vec<Component> = folder.components().collect();
    let common = path_parts.iter().zip(&folder_parts).take_while(|(a, b)| a == b).count();
    let mut out = PathBuf::new();
    for _ in common..folder_parts.len() {
        out.push("..");
    }
    for part in &path_parts[common..] {
        out.push(part);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_local_urls_in_healthchecks() {
        assert_eq!(
            local_url("curl -fsS http://localhost:8080/health || exit 1"),
            Some((8080, "/health".into()))
        );
        assert_eq!(local_url("wget -qO- 'http://127.0.0.1:80'"), Some((80, "/".into())));
        assert_eq!(local_url("pg_isready"), None);
    }

    #[test]
    fn names_and_paths() {
        assert_eq!(scenario_name("my_app"), "my-app-rehearsal");
        assert_eq!(
            relative_to(Path::new("/a/b/c.yml"), Path::new("/a/d")),
            PathBuf::from("../b/c.yml")
        );
        assert_eq!(quote("docker-compose.yml"), "docker-compose.yml");
        assert_eq!(quote("a b"), "\"a b\"");
    }
}
