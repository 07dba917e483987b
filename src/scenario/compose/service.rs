//! One compose service → a firedrill [`Service`]: image or build, command and entrypoint,
//! environment (`environment` over `env_file`), ports and `expose`, healthcheck, replicas, stop
//! settings, user, working folder, labels, volumes and tmpfs. Relations between services
//! (dependencies, networks, named volumes, profiles) are [`super::topology`]'s.

use std::path::PathBuf;
use std::time::Duration;

use indexmap::IndexMap;

use super::keys::{self, Support};
use super::{ComposeService, Condition};
use crate::scenario::model::{
    BuildSpec, ContainerSettings, HealthCheck, HealthKind, ImageSource, Mount, MountSource,
    PullPolicy, Service, Template,
};
use crate::scenario::read::Reader;
use crate::scenario::report::Span;
use crate::scenario::tree::{Entry, Node, ScalarKind, Value};

/// Most replicas a service may have (as in a firedrill service).
const MAX_REPLICAS: i64 = 16;
/// Startup timeout when the healthcheck does not ask for more.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// The walk over a merged compose tree.
pub(super) struct ComposeWalk<'s> {
    pub r: Reader<'s>,
    pub warnings: Vec<(Span, String)>,
    /// The project folder: relative paths (build contexts, bind mounts, env files) start here.
    pub folder: PathBuf,
    pub project: String,
    /// Variables for `environment` entries without a value.
    pub variables: IndexMap<String, String>,
}

/// What the topology checks need to know about a service, even a broken one.
pub(super) struct ServiceFacts {
    pub key: Span,
    pub depends_on: Vec<(String, Option<Condition>, bool, Span)>,
    pub networks: Option<(Vec<(String, Span)>, Span)>,
    pub volumes: Vec<(String, Span)>,
    pub profiles: Vec<String>,
    pub has_health: bool,
    pub service: Option<ComposeService>,
}

impl ComposeWalk<'_> {
    /// Sort a mapping's keys with `table`, recording warnings and errors.
    pub(super) fn keys<'n>(
        &mut self,
        node: &'n Node,
        table: &[(&str, Support)],
        context: &str,
        expected: &str,
    ) -> Option<IndexMap<&'n str, &'n Entry>> {
        if !matches!(node.value, Value::Map(_)) {
            self.r.wrong_type(node, expected);
            return None;
        }
        let warnings = &mut self.warnings;
        let r = &mut self.r;
        Some(keys::sort_keys(
            node,
            table,
            context,
            &mut |span, text| warnings.push((span, text)),
            &mut |span, message, help| {
                r.error(span, message, "here").help(help);
            },
        ))
    }

    pub(super) fn service(&mut self, name: &str, key: Span, node: &Node) -> ServiceFacts {
        let mut facts = ServiceFacts {
            key,
            depends_on: Vec::new(),
            networks: None,
            volumes: Vec::new(),
            profiles: Vec::new(),
            has_health: false,
            service: None,
        };
        let context = format!("service `{name}`");
        let Some(fields) = self.keys(node, keys::SERVICE, &context, "a mapping of service keys")
        else {
            return facts;
        };
        let get = |key: &str| fields.get(key).map(|entry| &entry.value);

        let has_build = get("build").is_some();
        let image = self.image(name, key, get("image"), get("build"));
        let command = get("command").map(|n| self.command(n, "command"));
        let entrypoint = get("entrypoint").map(|n| self.command(n, "entrypoint"));
        let env = self.environment(get("env_file"), get("environment"));
        let mut ports = Vec::new();
        let mut published = Vec::new();
        let mut ports_ok = true;
        if let Some(node) = get("ports") {
            match self.ports(node) {
                Some(list) => published = list,
                None => ports_ok = false,
            }
        }
        for port in &published {
            if !ports.contains(port) {
                ports.push(*port);
            }
        }
        if let Some(node) = get("expose") {
            match self.ports(node) {
                Some(list) => {
                    for port in list {
                        if !ports.contains(&port) {
                            ports.push(port);
                        }
                    }
                }
                None => ports_ok = false,
            }
        }
        let (health, startup_timeout) = match get("healthcheck") {
            Some(node) => match self.healthcheck(node) {
                Some((health, timeout)) => {
                    facts.has_health = health.is_some();
                    (Some(health), timeout)
                }
                None => (None, STARTUP_TIMEOUT),
            },
            None => (Some(None), STARTUP_TIMEOUT),
        };
        let replicas = self.replicas(get("deploy"), fields.get("scale").copied());
        if let Some(node) = get("depends_on") {
            facts.depends_on = self.depends_on(node);
        }
        if let Some(entry) = fields.get("networks") {
            facts.networks = self.service_networks(&entry.value).map(|n| (n, entry.key.span));
        }
        if let Some(node) = get("profiles") {
            facts.profiles = self.string_list(node, "a list of profile names").unwrap_or_default();
        }
        let labels = get("labels").map(|n| self.key_values(n, "labels"));
        let user = get("user").map(|n| self.r.non_empty_text(n, "a user such as `1000:1000`"));
        let working_dir = get("working_dir").map(|n| self.r.non_empty_text(n, "a folder path"));
        let stop_signal = get("stop_signal").map(|n| self.r.non_empty_text(n, "a signal"));
        let stop_grace_period = get("stop_grace_period").map(|n| self.duration(n));
        // `pull_policy` → firedrill's `pull:`; `build` (always rebuild) has no firedrill meaning:
        // a `build:` image is rebuilt whenever its context changed.
        let pull = match get("pull_policy") {
            None => Some(PullPolicy::default()),
            Some(node) => {
                self.r.non_empty_text(node, "a pull policy").and_then(|text| match text.as_str() {
                    "always" => Some(PullPolicy::Always),
                    "missing" | "if_not_present" => Some(PullPolicy::Missing),
                    "never" => Some(PullPolicy::Never),
                    other => {
                        self.r
                            .error(
                                node.span,
                                format!("unsupported `pull_policy: {other}`"),
                                "not always, missing, if_not_present or never",
                            )
                            .help(
                                "firedrill rebuilds a `build:` image whenever its context \
                                 changed; `build` has no meaning here",
                            );
                        None
                    }
                })
            }
        };
        let mut tmpfs = Vec::new();
        if let Some(node) = get("tmpfs") {
            match &node.value {
                Value::Seq(_) => {
                    tmpfs = self.string_list(node, "a list of paths").unwrap_or_default()
                }
                _ => tmpfs.extend(self.r.non_empty_text(node, "a path")),
            }
        }
        let mounts = get("volumes").map(|n| self.mounts(n, &mut facts, &mut tmpfs));

        facts.service = (|| {
            let settings = ContainerSettings {
                entrypoint: entrypoint.map_or(Some(None), |e| e.map(Some))?,
                user: user.map_or(Some(None), |u| u.map(Some))?,
                working_dir: working_dir.map_or(Some(None), |w| w.map(Some))?,
                labels: labels.unwrap_or(Some(IndexMap::new()))?,
                mounts: mounts.unwrap_or(Some(Vec::new()))?,
                tmpfs,
                stop_signal: stop_signal.map_or(Some(None), |s| s.map(Some))?,
                stop_grace_period: stop_grace_period.map_or(Some(None), |d| d.map(Some))?,
                faketime: false,
            };
            let service = Service {
                name: name.to_owned(),
                image: image?,
                env: env?,
                command: command.map_or(Some(None), |c| c.map(Some))?,
                ports: ports_ok.then_some(ports)?,
                health: health?,
                // Filled once the dependencies are checked.
                depends_on: Vec::new(),
                startup_timeout,
                backup: None,
                restore: None,
                replicas: replicas?,
                pull: pull?,
                container: settings,
            };
            Some(ComposeService { service, depends_on: Vec::new(), has_build, published })
        })();
        facts
    }

    fn image(
        &mut self,
        name: &str,
        key: Span,
        image: Option<&Node>,
        build: Option<&Node>,
    ) -> Option<ImageSource> {
        let image = match image {
            Some(node) => {
                let text = self.r.non_empty_text(node, "an image reference")?;
                if text.contains(char::is_whitespace) {
                    self.r.error(
                        node.span,
                        format!("invalid image reference `{text}`"),
                        "has spaces",
                    );
                    return None;
                }
                Some(text)
            }
            None => None,
        };
        let Some(build) = build else {
            return match image {
                Some(image) => Some(ImageSource::Image(image)),
                None => {
                    self.r
                        .error(
                            key,
                            format!("service `{name}` has neither `image` nor `build`"),
                            "needs an image",
                        )
                        .help("add `image: NAME:TAG` (a local image) or `build: ./folder`");
                    None
                }
            };
        };
        let tag = image.unwrap_or_else(|| format!("{}_{name}:latest", self.project));
        let (context_node, dockerfile, args, target) = match &build.value {
            Value::Scalar(_) => (build, None, None, None),
            _ => {
                let fields = self.keys(
                    build,
                    keys::BUILD,
                    "`build`",
                    "a build folder or a mapping with `context`",
                )?;
                let Some(context) = fields.get("context").map(|e| &e.value) else {
                    self.r.error(
                        self.r.head(build),
                        "missing `context` in `build`",
                        "needs `context`",
                    );
                    return None;
                };
                (
                    context,
                    fields.get("dockerfile").map(|e| &e.value),
                    fields.get("args").map(|e| &e.value),
                    fields.get("target").map(|e| &e.value),
                )
            }
        };
        let context_text = self.r.non_empty_text(context_node, "a build folder")?;
        let joined = self.folder.join(&context_text);
        let context = if joined.is_dir() { fs_err::canonicalize(&joined).ok() } else { None };
        if context.is_none() {
            self.r
                .error(
                    context_node.span,
                    format!("build context `{context_text}` is not a folder"),
                    "not found",
                )
                .help(format!(
                    "paths are relative to the compose project's folder; this is `{}`",
                    joined.display()
                ));
        }
        let dockerfile = match dockerfile {
            Some(node) => self.r.non_empty_text(node, "a Dockerfile path"),
            None => Some("Dockerfile".to_owned()),
        };
        if let (Some(context), Some(file)) = (&context, &dockerfile)
            && !context.join(file).is_file()
        {
            let span = dockerfile_span(build, context_node);
            self.r
                .error(span, format!("no `{file}` in the build context"), "not found")
                .help(format!("looked for `{}`", context.join(file).display()));
            return None;
        }
        let args = match args {
            Some(node) => self.key_values(node, "build args"),
            None => Some(IndexMap::new()),
        };
        let target = match target {
            Some(node) => self.r.non_empty_text(node, "a build stage name").map(Some),
            None => Some(None),
        };
        Some(ImageSource::Build(BuildSpec {
            context: context?,
            dockerfile: dockerfile?,
            tag,
            args: args?,
            prepare: None,
            target: target?,
        }))
    }

    /// A command as compose reads it: a list, or a string split like a shell would (no
    /// expansion).
    fn command(&mut self, node: &Node, what: &str) -> Option<Vec<String>> {
        match &node.value {
            Value::Seq(items) => {
                let mut argv = Some(Vec::with_capacity(items.len()));
                for item in items {
                    match (self.r.text(item, "a command-line argument"), &mut argv) {
                        (Some(arg), Some(argv)) => argv.push(arg),
                        _ => argv = None,
                    }
                }
                argv
            }
            _ => {
                let text = self.r.text(node, &format!("`{what}` as a string or a list"))?;
                match split_words(&text) {
                    Ok(words) => Some(words),
                    Err(why) => {
                        self.r
                            .error(node.span, format!("cannot split `{what}`: {why}"), "here")
                            .help("write it as a list: [program, arg]");
                        None
                    }
                }
            }
        }
    }

    /// `env_file` then `environment` (which wins).
    fn environment(
        &mut self,
        env_file: Option<&Node>,
        environment: Option<&Node>,
    ) -> Option<IndexMap<String, Template>> {
        let mut env = Some(IndexMap::new());
        if let Some(node) = env_file {
            let items: Vec<&Node> = match &node.value {
                Value::Seq(items) => items.iter().collect(),
                _ => vec![node],
            };
            for item in items {
                let (path_node, required) = match &item.value {
                    Value::Map(entries) => {
                        let path = entries
                            .iter()
                            .find(|e| e.key.scalar().is_some_and(|k| k.text == "path"));
                        let required = entries
                            .iter()
                            .find(|e| e.key.scalar().is_some_and(|k| k.text == "required"))
                            .and_then(|e| e.value.scalar())
                            .is_none_or(|s| s.text != "false");
                        match path {
                            Some(entry) => (&entry.value, required),
                            None => {
                                self.r.error(
                                    item.span,
                                    "missing `path` in `env_file`",
                                    "needs `path`",
                                );
                                env = None;
                                continue;
                            }
                        }
                    }
                    _ => (item, true),
                };
                let Some(text) = self.r.non_empty_text(path_node, "an env file path") else {
                    env = None;
                    continue;
                };
                let path = self.folder.join(&text);
                match fs_err::read_to_string(&path) {
                    Ok(content) => {
                        let (vars, bad) = super::interpolate::dotenv(&content);
                        for super::interpolate::BadLine(line) in bad {
                            self.r
                                .error(
                                    path_node.span,
                                    format!("line {} of `{text}` is not `KEY=VALUE`", line + 1),
                                    "in this file",
                                )
                                .help(format!("fix `{}`", path.display()));
                            env = None;
                        }
                        if let Some(env) = &mut env {
                            for (key, value) in vars {
                                env.insert(key, Template::literal(value));
                            }
                        }
                    }
                    Err(_) if !required => {}
                    Err(error) => {
                        self.r
                            .error(
                                path_node.span,
                                format!("cannot read env file `{text}`"),
                                "not readable",
                            )
                            .help(format!("`{}`: {error}", path.display()));
                        env = None;
                    }
                }
            }
        }
        if let Some(node) = environment {
            let pairs = self.pairs(node, "environment")?;
            if let Some(env) = &mut env {
                for (key, value) in pairs {
                    match value.or_else(|| self.variables.get(&key).cloned()) {
                        Some(value) => {
                            env.shift_remove(&key);
                            env.insert(key, Template::literal(value));
                        }
                        // Compose leaves a variable without a value and without a source unset.
                        None => {
                            env.shift_remove(&key);
                        }
                    }
                }
            }
        }
        env
    }

    /// `KEY: VALUE` mapping or `[KEY=VALUE, KEY]` list; a value `None` means "no value given".
    fn pairs(&mut self, node: &Node, what: &str) -> Option<Vec<(String, Option<String>)>> {
        let mut out = Some(Vec::new());
        match &node.value {
            Value::Map(entries) => {
                for entry in entries {
                    let key = entry.key.scalar().map(|s| s.text.clone()).filter(|k| !k.is_empty());
                    let Some(key) = key else {
                        self.r.error(
                            entry.key.span,
                            format!("expected a name in `{what}`"),
                            "not a name",
                        );
                        out = None;
                        continue;
                    };
                    let value = match &entry.value.value {
                        Value::Scalar(s) if s.kind() == ScalarKind::Null => None,
                        Value::Scalar(s) => Some(s.text.clone()),
                        _ => {
                            self.r.wrong_type(&entry.value, "a string, a number or nothing");
                            out = None;
                            continue;
                        }
                    };
                    if let Some(out) = &mut out {
                        out.push((key, value));
                    }
                }
            }
            Value::Seq(items) => {
                for item in items {
                    let Some(text) = self.r.non_empty_text(item, "`KEY=VALUE`") else {
                        out = None;
                        continue;
                    };
                    let pair = match text.split_once('=') {
                        Some((key, value)) => (key.to_owned(), Some(value.to_owned())),
                        None => (text, None),
                    };
                    if let Some(out) = &mut out {
                        out.push(pair);
                    }
                }
            }
            Value::Scalar(_) => {
                self.r.wrong_type(node, &format!("`{what}` as a mapping or a list of `KEY=VALUE`"));
                return None;
            }
        }
        out
    }

    fn key_values(&mut self, node: &Node, what: &str) -> Option<IndexMap<String, String>> {
        let pairs = self.pairs(node, what)?;
        Some(pairs.into_iter().map(|(k, v)| (k, v.unwrap_or_default())).collect())
    }

    pub(super) fn string_list(&mut self, node: &Node, expected: &str) -> Option<Vec<String>> {
        let items = self.r.list(node, expected)?;
        let mut out = Some(Vec::with_capacity(items.len()));
        for item in items {
            match (self.r.non_empty_text(item, "a string"), &mut out) {
                (Some(text), Some(out)) => out.push(text),
                _ => out = None,
            }
        }
        out
    }

    /// Container ports of `ports` or `expose`: `80`, `"8080:80"`, `"127.0.0.1:8080:80/tcp"`,
    /// `{ target: 80, published: 8080 }`. Host addresses and ports are ignored: firedrill
    /// publishes on 127.0.0.1 with a random host port.
    fn ports(&mut self, node: &Node) -> Option<Vec<u16>> {
        let items = self.r.list(node, "a list of ports")?;
        let mut ports = Some(Vec::new());
        for item in items {
            let port = match &item.value {
                Value::Map(_) => self.long_port(item),
                Value::Scalar(_) => {
                    let text = self.r.non_empty_text(item, "a port")?;
                    match parse_short_port(&text) {
                        Ok(port) => Some(port),
                        Err((message, hint)) => {
                            self.r.error(item.span, message, "here").help(hint);
                            None
                        }
                    }
                }
                Value::Seq(_) => {
                    self.r.wrong_type(item, "a port");
                    None
                }
            };
            match (port, &mut ports) {
                (Some(port), Some(ports)) => ports.push(port),
                _ => ports = None,
            }
        }
        ports
    }

    fn long_port(&mut self, node: &Node) -> Option<u16> {
        let fields = self.keys(node, keys::PORT, "a port", "a port mapping")?;
        let Some(target) = fields.get("target") else {
            self.r.error(self.r.head(node), "missing `target` in a port", "needs `target`");
            return None;
        };
        if let Some(protocol) = fields.get("protocol")
            && protocol.value.scalar().is_some_and(|s| s.text != "tcp")
        {
            self.r
                .error(protocol.value.span, "only TCP ports are supported", "not tcp")
                .help("the harness probes and proxies TCP; remove the port or make it tcp");
            return None;
        }
        self.r.port(&target.value)
    }

    fn healthcheck(&mut self, node: &Node) -> Option<(Option<HealthCheck>, Duration)> {
        let fields =
            self.keys(node, keys::HEALTHCHECK, "`healthcheck`", "a healthcheck mapping")?;
        let get = |key: &str| fields.get(key).map(|entry| &entry.value);
        let disabled = match get("disable") {
            Some(n) => self.r.boolean(n, "`true` or `false`")?,
            None => false,
        };
        let interval = get("interval").map_or(Some(None), |n| self.duration(n).map(Some));
        let timeout = get("timeout").map_or(Some(None), |n| self.duration(n).map(Some));
        let start_period = get("start_period").map_or(Some(None), |n| self.duration(n).map(Some));
        let retries = match get("retries") {
            Some(n) => self.r.integer(n, "a number of retries", 0..=1000).map(|n| n as u32),
            None => Some(3),
        };
        let test = match get("test") {
            Some(n) => self.health_test(n),
            None if disabled => Some(None),
            None => {
                self.r
                    .error(self.r.head(node), "missing `test` in `healthcheck`", "needs `test`")
                    .help("write `test: [CMD, program, arg]` or `test: [CMD-SHELL, \"command\"]`");
                None
            }
        };
        let (interval, timeout, start_period, retries, test) =
            (interval?, timeout?, start_period?, retries?, test?);
        let Some(command) = test.filter(|_| !disabled) else {
            return Some((None, STARTUP_TIMEOUT));
        };
        let interval = interval.unwrap_or(Duration::from_millis(500));
        let timeout = timeout.unwrap_or(Duration::from_secs(2));
        let budget = start_period.unwrap_or_default() + interval * (retries + 1) + timeout;
        let health = HealthCheck { kind: HealthKind::Exec { command }, interval, timeout };
        Some((Some(health), budget.max(STARTUP_TIMEOUT)))
    }

    /// `[CMD, ...]`, `[CMD-SHELL, "..."]`, `"..."` (shell), `[NONE]`; `Some(None)` is NONE.
    fn health_test(&mut self, node: &Node) -> Option<Option<Vec<String>>> {
        match &node.value {
            Value::Seq(items) => {
                let words = self.string_list(node, "a test command")?;
                match words.first().map(String::as_str) {
                    Some("NONE") => Some(None),
                    Some("CMD") if words.len() > 1 => Some(Some(words[1..].to_vec())),
                    Some("CMD-SHELL") if words.len() == 2 => {
                        Some(Some(vec!["/bin/sh".to_owned(), "-c".to_owned(), words[1].clone()]))
                    }
                    _ => {
                        let span = items.first().map_or(node.span, |i| i.span);
                        self.r
                            .error(span, "a healthcheck test starts with `CMD`, `CMD-SHELL` or `NONE`", "here")
                            .help("write `[CMD, program, arg]`, `[CMD-SHELL, \"command\"]` or `[NONE]`");
                        None
                    }
                }
            }
            _ => {
                let text = self.r.non_empty_text(node, "a test command")?;
                Some(Some(vec!["/bin/sh".to_owned(), "-c".to_owned(), text]))
            }
        }
    }

    fn replicas(&mut self, deploy: Option<&Node>, scale: Option<&Entry>) -> Option<u32> {
        let mut from_deploy = None;
        if let Some(node) = deploy {
            let fields = self.keys(node, keys::DEPLOY, "`deploy`", "a deploy mapping")?;
            if let Some(mode) = fields.get("mode")
                && let Some(text) = self.r.text(&mode.value, "`replicated` or `global`")
                && text != "replicated"
                && text != "global"
            {
                self.r
                    .error(mode.value.span, format!("unknown deploy mode `{text}`"), "here")
                    .help("`replicated` or `global` (one replica on one machine)");
                return None;
            }
            if let Some(entry) = fields.get("replicas") {
                from_deploy = Some((self.replica_count(&entry.value)?, entry.key.span));
            }
        }
        let from_scale = match scale {
            Some(entry) => Some((self.replica_count(&entry.value)?, entry.key.span)),
            None => None,
        };
        match (from_deploy, from_scale) {
            (Some((a, _)), Some((b, span))) if a != b => {
                self.r
                    .error(
                        span,
                        format!("`scale: {b}` disagrees with `deploy.replicas: {a}`"),
                        "here",
                    )
                    .help("keep one of them");
                None
            }
            (Some((n, _)), _) | (None, Some((n, _))) => Some(n),
            (None, None) => Some(1),
        }
    }

    fn replica_count(&mut self, node: &Node) -> Option<u32> {
        let n = self.r.integer(node, "a number of replicas", 0..=MAX_REPLICAS)?;
        if n == 0 {
            self.r
                .error(node.span, "a service with 0 replicas does not run", "0")
                .help("leave the service out with `profiles`, or give it at least 1 replica");
            return None;
        }
        Some(u32::try_from(n).expect("checked range"))
    }

    fn depends_on(&mut self, node: &Node) -> Vec<(String, Option<Condition>, bool, Span)> {
        let mut out = Vec::new();
        match &node.value {
            Value::Seq(items) => {
                for item in items {
                    if let Some(name) = self.r.non_empty_text(item, "a service name") {
                        out.push((name, Some(Condition::Started), true, item.span));
                    }
                }
            }
            Value::Map(entries) => {
                for entry in entries {
                    let Some(name) = entry.key.scalar().map(|s| s.text.clone()) else { continue };
                    let mut condition = Some(Condition::Started);
                    let mut required = true;
                    if !matches!(&entry.value.value, Value::Scalar(s) if s.kind() == ScalarKind::Null)
                        && let Some(fields) = self.keys(
                            &entry.value,
                            keys::DEPENDENCY,
                            "a dependency",
                            "a mapping with `condition`",
                        )
                    {
                        if let Some(c) = fields.get("condition") {
                            condition = self.condition(&c.value);
                        }
                        if let Some(r) = fields.get("required") {
                            required =
                                self.r.boolean(&r.value, "`true` or `false`").unwrap_or(true);
                        }
                    }
                    out.push((name, condition, required, entry.key.span));
                }
            }
            Value::Scalar(_) => {
                self.r
                    .wrong_type(node, "a list of services or a mapping of services to conditions");
            }
        }
        out
    }

    fn condition(&mut self, node: &Node) -> Option<Condition> {
        let text = self.r.text(node, "a condition")?;
        match text.as_str() {
            "service_started" => Some(Condition::Started),
            "service_healthy" => Some(Condition::Healthy),
            "service_completed_successfully" => {
                self.r
                    .error(node.span, "`service_completed_successfully` is not supported by firedrill", "one-shot")
                    .help("firedrill runs every service as long-lived and would count a finished one as down; run the one-shot work in the image's entrypoint or as an upgrade's `migrate`");
                None
            }
            other => {
                self.r
                    .error(node.span, format!("unknown condition `{other}`"), "here")
                    .help("expected `service_started`, `service_healthy` or `service_completed_successfully`");
                None
            }
        }
    }

    fn service_networks(&mut self, node: &Node) -> Option<Vec<(String, Span)>> {
        match &node.value {
            Value::Seq(items) => {
                let mut out = Vec::new();
                for item in items {
                    out.push((self.r.non_empty_text(item, "a network name")?, item.span));
                }
                Some(out)
            }
            Value::Map(entries) => {
                let mut out = Vec::new();
                for entry in entries {
                    let name = entry.key.scalar().map(|s| s.text.clone()).unwrap_or_default();
                    if !matches!(&entry.value.value, Value::Scalar(s) if s.kind() == ScalarKind::Null)
                    {
                        self.keys(
                            &entry.value,
                            keys::SERVICE_NETWORK,
                            "a service's network",
                            "a mapping",
                        )?;
                    }
                    out.push((name, entry.key.span));
                }
                Some(out)
            }
            Value::Scalar(_) => {
                self.r.wrong_type(node, "a list of network names");
                None
            }
        }
    }

    /// `volumes` of a service: named volumes (recorded for the topology check), bind mounts,
    /// anonymous volumes; long-form `tmpfs` entries go to `tmpfs`. A later entry with the same
    /// target replaces an earlier one (that is how override files change a mount).
    fn mounts(
        &mut self,
        node: &Node,
        facts: &mut ServiceFacts,
        tmpfs: &mut Vec<String>,
    ) -> Option<Vec<Mount>> {
        let items = self.r.list(node, "a list of volumes")?;
        let mut mounts: Option<Vec<Mount>> = Some(Vec::new());
        for item in items {
            let mount = match &item.value {
                Value::Map(_) => self.long_mount(item, tmpfs),
                _ => self.short_mount(item),
            };
            match (mount, &mut mounts) {
                (Some(Some(mount)), Some(list)) => {
                    if let MountSource::Volume(name) = &mount.source {
                        facts.volumes.push((name.clone(), item.span));
                    }
                    list.retain(|m| m.target != mount.target);
                    list.push(mount);
                }
                (Some(None), _) => {}
                _ => mounts = None,
            }
        }
        mounts
    }

    fn short_mount(&mut self, node: &Node) -> Option<Option<Mount>> {
        let text = self.r.non_empty_text(node, "`SOURCE:TARGET[:MODE]`")?;
        let parts: Vec<&str> = text.split(':').collect();
        let (source, target, mode) = match parts.as_slice() {
            [target] => (None, *target, None),
            [source, target] => (Some(*source), *target, None),
            [source, target, mode] => (Some(*source), *target, Some(*mode)),
            _ => {
                self.r
                    .error(node.span, format!("cannot read volume `{text}`"), "here")
                    .help("write `SOURCE:TARGET` or `SOURCE:TARGET:ro`");
                return None;
            }
        };
        let mut read_only = false;
        for option in mode.unwrap_or_default().split(',').filter(|o| !o.is_empty()) {
            match option {
                "ro" => read_only = true,
                "rw" | "cached" | "delegated" | "consistent" | "nocopy" | "z" | "Z" => {}
                other => {
                    self.r
                        .error(node.span, format!("unknown volume mode `{other}`"), "here")
                        .help("`ro` or `rw`");
                    return None;
                }
            }
        }
        self.mount(node, source, target, read_only).map(Some)
    }

    fn long_mount(&mut self, node: &Node, tmpfs: &mut Vec<String>) -> Option<Option<Mount>> {
        let fields = self.keys(node, keys::MOUNT, "a volume", "a volume mapping")?;
        let text = |walk: &mut Self, key: &str| {
            fields.get(key).and_then(|e| walk.r.non_empty_text(&e.value, "a string"))
        };
        let kind = text(self, "type").unwrap_or_else(|| "volume".to_owned());
        let Some(target) = text(self, "target") else {
            self.r.error(self.r.head(node), "missing `target` in a volume", "needs `target`");
            return None;
        };
        let read_only = match fields.get("read_only") {
            Some(e) => self.r.boolean(&e.value, "`true` or `false`")?,
            None => false,
        };
        let source = text(self, "source");
        match kind.as_str() {
            "tmpfs" => {
                tmpfs.push(target);
                Some(None)
            }
            "volume" | "bind" => {
                if kind == "bind" && source.is_none() {
                    self.r.error(
                        self.r.head(node),
                        "a bind mount needs `source`",
                        "needs `source`",
                    );
                    return None;
                }
                let source = source
                    .map(|s| if kind == "bind" && !is_path(&s) { format!("./{s}") } else { s });
                self.mount(node, source.as_deref(), &target, read_only).map(Some)
            }
            other => {
                let span = fields.get("type").map_or(node.span, |e| e.value.span);
                self.r
                    .error(span, format!("volume type `{other}` is not supported"), "here")
                    .help("`volume`, `bind` or `tmpfs`");
                None
            }
        }
    }

    fn mount(
        &mut self,
        node: &Node,
        source: Option<&str>,
        target: &str,
        read_only: bool,
    ) -> Option<Mount> {
        if !target.starts_with('/') {
            self.r.error(
                node.span,
                format!("volume target `{target}` is not an absolute path"),
                "here",
            );
            return None;
        }
        let source = match source {
            None => MountSource::Anonymous,
            Some(source) if is_path(source) => {
                let expanded = match source.strip_prefix('~') {
                    Some(rest) => match self.variables.get("HOME") {
                        Some(home) => format!("{home}{rest}"),
                        None => {
                            self.r.error(node.span, "`~` needs `HOME` to be set", "here");
                            return None;
                        }
                    },
                    None => source.to_owned(),
                };
                let path = self.folder.join(expanded);
                let absolute = std::path::absolute(&path).unwrap_or(path);
                MountSource::Bind(normalize(&absolute))
            }
            Some(name) => MountSource::Volume(name.to_owned()),
        };
        Some(Mount { source, target: target.to_owned(), read_only })
    }

    pub(super) fn duration(&mut self, node: &Node) -> Option<Duration> {
        let text = self.r.text(node, "a duration such as `10s`")?;
        match parse_duration(&text) {
            Some(duration) => Some(duration),
            None => {
                self.r
                    .error(node.span, format!("invalid duration `{text}`"), "here")
                    .help("compose durations look like `10s`, `1m30s`, `500ms` or `1.5s`");
                None
            }
        }
    }
}

fn dockerfile_span(build: &Node, context: &Node) -> Span {
    match &build.value {
        Value::Map(entries) => entries
            .iter()
            .find(|e| e.key.scalar().is_some_and(|k| k.text == "dockerfile"))
            .map_or(context.span, |e| e.value.span),
        _ => context.span,
    }
}

fn is_path(text: &str) -> bool {
    text.starts_with('/') || text.starts_with('.') || text.starts_with('~')
}

/// Drop `.` and resolve `..` without touching the file system (the folder may not exist yet).
fn normalize(path: &std::path::Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// The container port of a short port: `80`, `8080:80`, `127.0.0.1:8080:80`, `80/tcp`.
fn parse_short_port(text: &str) -> Result<u16, (String, String)> {
    let (spec, protocol) = text.split_once('/').unwrap_or((text, "tcp"));
    if protocol != "tcp" {
        return Err((
            format!("only TCP ports are supported, not `{protocol}`"),
            "the harness probes and proxies TCP; remove the port or make it tcp".to_owned(),
        ));
    }
    let container = spec.rsplit(':').next().unwrap_or(spec);
    if container.contains('-') {
        return Err((
            format!("port range `{container}` is not supported"),
            "list the ports one by one".to_owned(),
        ));
    }
    match container.parse::<u16>() {
        Ok(port) if port > 0 => Ok(port),
        _ => Err((
            format!("invalid port `{text}`"),
            "write `80`, `8080:80` or `127.0.0.1:8080:80`".to_owned(),
        )),
    }
}

/// A Go-style duration as compose writes them: `10s`, `1m30s`, `1.5s`, `500ms`, `0s`.
pub(super) fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    if text == "0" {
        return Some(Duration::ZERO);
    }
    let mut rest = text;
    let mut total = 0f64;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let number_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let number: f64 = rest[..number_len].parse().ok()?;
        rest = &rest[number_len..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += number * scale;
        rest = &rest[unit_len..];
    }
    Some(Duration::from_secs_f64(total))
}

/// Split a command string into words like a POSIX shell (quotes and backslashes), without any
/// expansion — how compose reads `command: "a 'b c'"`.
fn split_words(text: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err("unclosed `'`".to_owned()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => word.push(c),
                            Some(c) => {
                                word.push('\\');
                                word.push(c);
                            }
                            None => return Err("unclosed `\"`".to_owned()),
                        },
                        Some(c) => word.push(c),
                        None => return Err("unclosed `\"`".to_owned()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(c) = chars.next() {
                    word.push(c);
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_commands_like_a_shell() {
        assert_eq!(split_words("redis-server --save ''").unwrap(), ["redis-server", "--save", ""]);
        assert_eq!(
            split_words(r#"sh -c "echo \"hi\" there""#).unwrap(),
            ["sh", "-c", "echo \"hi\" there"]
        );
        assert!(split_words("a 'b").is_err());
    }

    #[test]
    fn reads_go_durations() {
        assert_eq!(parse_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("0s"), Some(Duration::ZERO));
        assert_eq!(parse_duration("10"), None);
        assert_eq!(parse_duration("5x"), None);
    }

    #[test]
    fn reads_short_ports() {
        assert_eq!(parse_short_port("80"), Ok(80));
        assert_eq!(parse_short_port("8080:80"), Ok(80));
        assert_eq!(parse_short_port("127.0.0.1:8080:80/tcp"), Ok(80));
        assert!(parse_short_port("53:53/udp").is_err());
        assert!(parse_short_port("8000-8001:8000-8001").is_err());
    }
}
