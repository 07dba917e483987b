//! `stack.services`: images and builds, environment templates, ports, health checks, and the
//! checks across services (dependencies, cycles, template targets, health ports).

use crate::scenario::keys;
use std::path::PathBuf;
use std::time::Duration;

use indexmap::IndexMap;

use super::walk::{ServiceInfo, Services, Walk, is_name};
use crate::scenario::model::{
    BuildSpec, HealthCheck, HealthKind, ImageSource, PullPolicy, Reference, Service, Template,
};
use crate::scenario::read::Fields;
use crate::scenario::report::Span;
use crate::scenario::tree::{Node, Value};
use crate::scenario::{suggest, template};

/// Most replicas a service may have: each is a container on a 2-core laptop or CI runner.
pub(super) const MAX_REPLICAS: i64 = 16;

impl Walk<'_> {
    pub(super) fn stack(&mut self, node: &Node, key: Option<Span>) -> Option<Services> {
        let at = key.unwrap_or_else(|| self.r.head(node));
        let fields =
            self.r.fields(node, at, "`stack`", "a mapping with `services`", &keys::STACK)?;
        if fields.get("compose").is_some() {
            return self.compose_stack(&fields);
        }
        if let Some(entry) = fields.entry("profiles") {
            self.r
                .error(entry.key.span, "`profiles` needs `compose`", "without `compose`")
                .help("profiles select services of a compose file (`stack.compose`)");
        }
        let services_node = self.r.require(&fields, "services")?;
        let Value::Map(entries) = &services_node.value else {
            self.r.wrong_type(services_node, "a mapping of service names to services");
            return None;
        };
        if entries.is_empty() {
            self.r
                .error(self.r.head(services_node), "`stack.services` is empty", "no services")
                .help("declare at least one service");
            return None;
        }
        let mut services = IndexMap::with_capacity(entries.len());
        let mut complete = true;
        for entry in entries {
            let Some(name) = self.service_name(&entry.key) else {
                complete = false;
                continue;
            };
            let info = self.service(&name, entry.key.span, &entry.value);
            services.insert(name, info);
        }
        let services = Services(services);
        self.check_services(&services);
        complete.then_some(services)
    }

    pub(super) fn service_name(&mut self, key: &Node) -> Option<String> {
        let name = key.scalar().map(|s| s.text.clone()).unwrap_or_default();
        if is_name(&name, &['-', '_']) {
            return Some(name);
        }
        let span = self.r.head(key);
        self.r.error(span, format!("invalid service name `{name}`"), "not a valid name").help(
            "use lowercase letters, digits, `-` and `_`, starting with a letter or digit \
             (it becomes a hostname)",
        );
        None
    }

    pub(super) fn service(&mut self, name: &str, key: Span, node: &Node) -> ServiceInfo {
        let context = format!("service `{name}`");
        let mut info = ServiceInfo {
            key,
            ports: Some(Vec::new()),
            has_health: false,
            health_interval: None,
            has_backup: false,
            has_restore: false,
            depends_on: Vec::new(),
            env_refs: Vec::new(),
            health_port: None,
            replicas: 1,
            service: None,
        };
        let Some(fields) =
            self.r.fields(node, key, context.clone(), "a mapping of service keys", &keys::SERVICE)
        else {
            info.ports = None;
            return info;
        };
        let image = self.image_source(&fields);
        let env = fields.get("env").map(|node| self.env(node, &mut info));
        let command = fields.get("command").map(|node| self.r.argv(node, "command"));
        if let Some(node) = fields.get("ports") {
            info.ports = self.ports(node);
        }
        info.has_health = fields.get("health").is_some();
        let health = fields
            .get("health")
            .map(|node| self.health(node, fields.entry("health").map(|e| e.key.span), &mut info));
        let startup_timeout = match fields.get("startup-timeout") {
            Some(node) => self.r.duration(node),
            None => Some(Duration::from_secs(60)),
        };
        let stop_grace_period = fields.get("stop-grace-period").map(|node| self.r.duration(node));
        let depends_on = fields.get("depends-on").map(|node| self.depends_on(node, &mut info));
        info.has_backup = fields.get("backup").is_some();
        info.has_restore = fields.get("restore").is_some();
        let backup = fields.get("backup").map(|node| self.r.argv(node, "backup"));
        let restore = fields.get("restore").map(|node| self.r.argv(node, "restore"));

        let replicas = match fields.get("replicas") {
            Some(node) => self
                .r
                .integer(node, "a number of replicas", 1..=MAX_REPLICAS)
                .map(|n| u32::try_from(n).expect("checked range")),
            None => Some(1),
        };
        info.replicas = replicas.unwrap_or(1);
        let pull = match fields.get("pull") {
            Some(node) => self.pull(node),
            None => Some(PullPolicy::default()),
        };

        let ports = info.ports.clone();
        info.service = (|| {
            Some(Service {
                name: name.to_owned(),
                image: image?,
                env: env.unwrap_or(Some(IndexMap::new()))?,
                command: command.map_or(Some(None), |c| c.map(Some))?,
                ports: ports?,
                health: health.map_or(Some(None), |h| h.map(Some))?,
                depends_on: depends_on.unwrap_or(Some(Vec::new()))?,
                startup_timeout: startup_timeout?,
                backup: backup.map_or(Some(None), |c| c.map(Some))?,
                restore: restore.map_or(Some(None), |c| c.map(Some))?,
                replicas: replicas?,
                pull: pull?,
                container: crate::scenario::model::ContainerSettings {
                    stop_grace_period: stop_grace_period.map_or(Some(None), |g| g.map(Some))?,
                    ..Default::default()
                },
            })
        })();
        info
    }

    fn pull(&mut self, node: &Node) -> Option<PullPolicy> {
        let text = self.r.text(node, "`missing`, `always` or `never`")?;
        if let Ok(policy) = text.parse() {
            return Some(policy);
        }
        let names = PullPolicy::NAMES.iter().copied();
        let hint = match suggest::closest(&text, names.clone()) {
            Some(close) => format!("did you mean `{close}`?"),
            None => format!("use {}", suggest::list(names)),
        };
        self.r
            .error(node.span, format!("unknown pull policy `{text}`"), "unknown policy")
            .help(hint);
        None
    }

    pub(super) fn image_source(&mut self, fields: &Fields<'_>) -> Option<ImageSource> {
        match fields.present(&["image", "build"]).as_slice() {
            [] => {
                let message = format!("missing `image` or `build` in {}", fields.context);
                self.r.error(fields.at, message, "needs an image").help(
                    "`image: NAME:TAG` runs a local image; `build: { context, tag }` builds one",
                );
                None
            }
            [("image", entry)] => {
                let image = self
                    .r
                    .non_empty_text(&entry.value, "an image reference such as `postgres:15`")?;
                if image.contains(char::is_whitespace) {
                    self.r.error(
                        entry.value.span,
                        format!("invalid image reference `{image}`"),
                        "has spaces",
                    );
                    return None;
                }
                Some(ImageSource::Image(image))
            }
            [(_, entry)] => self.build(&entry.value, entry.key.span).map(ImageSource::Build),
            [_, (second, entry), ..] => {
                self.r
                    .error(
                        entry.key.span,
                        format!("{} has both `image` and `build`", fields.context),
                        format!("second `{second}`"),
                    )
                    .help("keep one: `image` runs an existing local image, `build` builds one");
                None
            }
        }
    }

    pub(super) fn build(&mut self, node: &Node, key: Span) -> Option<BuildSpec> {
        let Some(fields) =
            self.r.fields(node, key, "`build`", "a mapping with `context` and `tag`", &keys::BUILD)
        else {
            if let Some(scalar) = node.scalar() {
                let problem = self.r.last();
                problem
                    .help(format!("write `build: {{ context: {}, tag: NAME:TAG }}`", scalar.text));
            }
            return None;
        };
        let context_node = self.r.require(&fields, "context");
        let context = context_node.and_then(|node| self.build_context(node));
        let tag = self.r.require(&fields, "tag").and_then(|node| {
            let tag =
                self.r.non_empty_text(node, "an image tag such as `firedrill-demo/billing:1.0`")?;
            if tag.contains(char::is_whitespace) {
                self.r.error(node.span, format!("invalid image tag `{tag}`"), "has spaces");
                return None;
            }
            Some(tag)
        });
        let dockerfile = match fields.get("dockerfile") {
            Some(node) => self.r.non_empty_text(node, "a Dockerfile path"),
            None => Some("Dockerfile".to_owned()),
        };
        if let (Some(context), Some(dockerfile)) = (&context, &dockerfile)
            && !context.join(dockerfile).is_file()
        {
            let span = fields.get("dockerfile").or(context_node).map_or(fields.at, |n| n.span);
            self.r
                .error(span, format!("no `{dockerfile}` in the build context"), "not found")
                .help(format!("looked for `{}`", context.join(dockerfile).display()));
        }
        let args = match fields.get("args") {
            Some(node) => self
                .r
                .string_map(node, "a mapping of build arguments")
                .map(|map| map.into_iter().map(|(k, (v, _))| (k, v)).collect()),
            None => Some(IndexMap::new()),
        };
        let prepare = fields.get("prepare").map(|node| self.r.argv(node, "prepare"));
        Some(BuildSpec {
            context: context?,
            dockerfile: dockerfile?,
            tag: tag?,
            args: args?,
            prepare: prepare.map_or(Some(None), |p| p.map(Some))?,
            target: None,
        })
    }

    pub(super) fn build_context(&mut self, node: &Node) -> Option<PathBuf> {
        let text = self.r.non_empty_text(node, "a folder path")?;
        let joined = self.folder.join(&text);
        let problem = if joined.is_dir() {
            match fs_err::canonicalize(&joined) {
                Ok(absolute) => return Some(absolute),
                Err(error) => format!("cannot resolve build context `{text}`: {error}"),
            }
        } else if joined.exists() {
            format!("build context `{text}` is not a folder")
        } else {
            format!("build context `{text}` does not exist")
        };
        self.r.error(node.span, problem, "not a folder").help(format!(
            "paths are relative to the scenario's folder; this is `{}`",
            joined.display()
        ));
        None
    }

    pub(super) fn env(
        &mut self,
        node: &Node,
        info: &mut ServiceInfo,
    ) -> Option<IndexMap<String, Template>> {
        let map = self.r.string_map(node, "a mapping of variable names to values")?;
        let mut env = Some(IndexMap::with_capacity(map.len()));
        for (key, (value, value_node)) in map {
            let (template, found, errors) = template::parse(&value);
            let at = |range: std::ops::Range<usize>| match value_node
                .scalar()
                .and_then(|s| s.verbatim_at)
            {
                Some(start) => Span::new(start + range.start, start + range.end),
                None => value_node.span,
            };
            for reference in found {
                info.env_refs.push((reference.reference, at(reference.range)));
            }
            if !errors.is_empty() {
                env = None;
            }
            for error in errors {
                let problem = self.r.error(at(error.range), error.message, error.label);
                problem.help = error.help;
            }
            if let Some(env) = &mut env {
                env.insert(key, template);
            }
        }
        env
    }

    pub(super) fn ports(&mut self, node: &Node) -> Option<Vec<u16>> {
        let Some(items) = self.r.list(node, "a list of ports") else {
            if let Some(scalar) = node.scalar() {
                self.r.last().help(format!("write `ports: [{}]`", scalar.text));
            }
            return None;
        };
        let mut ports: Vec<(u16, Span)> = Vec::with_capacity(items.len());
        let mut ok = true;
        for item in items {
            let Some(port) = self.r.port(item) else {
                ok = false;
                continue;
            };
            if let Some((_, first)) = ports.iter().find(|(p, _)| *p == port) {
                let line = self.r.line(*first);
                self.r
                    .error(item.span, format!("duplicate port {port}"), "listed again")
                    .help(format!("{port} is already listed on line {line}"));
                ok = false;
                continue;
            }
            ports.push((port, item.span));
        }
        ok.then(|| ports.into_iter().map(|(p, _)| p).collect())
    }

    pub(super) fn health(
        &mut self,
        node: &Node,
        key: Option<Span>,
        info: &mut ServiceInfo,
    ) -> Option<HealthCheck> {
        let at = key.unwrap_or_else(|| self.r.head(node));
        let fields = self.r.fields(
            node,
            at,
            "`health`",
            "a mapping with one of `http`, `tcp`, `exec` or `log`",
            &keys::HEALTH,
        )?;
        let kind = match fields.present(&keys::HEALTH.choices()).as_slice() {
            [] => {
                self.r
                    .error(at, "missing check in `health`", "needs a check")
                    .help(format!("add one of {}", suggest::list(keys::HEALTH.choices())));
                None
            }
            [(kind, entry)] => self.health_kind(kind, &entry.value, entry.key.span, info),
            [(first, _), (second, entry), ..] => {
                self.r
                    .error(
                        entry.key.span,
                        format!("`health` has both `{first}` and `{second}`"),
                        "second check",
                    )
                    .help("a health check is exactly one of `http`, `tcp`, `exec` or `log`");
                None
            }
        };
        let interval =
            fields.get("interval").map_or(Some(Duration::from_millis(500)), |n| self.r.duration(n));
        info.health_interval = interval;
        let timeout =
            fields.get("timeout").map_or(Some(Duration::from_secs(2)), |n| self.r.duration(n));
        Some(HealthCheck { kind: kind?, interval: interval?, timeout: timeout? })
    }

    pub(super) fn health_kind(
        &mut self,
        kind: &str,
        node: &Node,
        key: Span,
        info: &mut ServiceInfo,
    ) -> Option<HealthKind> {
        match kind {
            "http" => {
                let fields = self.r.fields(
                    node,
                    key,
                    "`health.http`",
                    "a mapping with `port` and `path`",
                    &keys::HEALTH_HTTP,
                )?;
                let port =
                    self.r.require(&fields, "port").and_then(|n| self.port_with_span(n, info));
                let path = self.http_path(fields.get("path"));
                let status = fields.get("status").map_or(Some(200), |n| self.r.status(n));
                Some(HealthKind::Http { port: port?, path: path?, status: status? })
            }
            "tcp" => {
                let fields = self.r.fields(
                    node,
                    key,
                    "`health.tcp`",
                    "a mapping with `port`",
                    &keys::TCP_HEALTH,
                )?;
                let port =
                    self.r.require(&fields, "port").and_then(|n| self.port_with_span(n, info));
                let exchange = self.tcp_exchange(&fields, node, "`health.tcp`");
                Some(HealthKind::Tcp { port: port?, exchange: exchange? })
            }
            "exec" => Some(HealthKind::Exec { command: self.r.argv(node, "exec")? }),
            _ => Some(HealthKind::Log {
                contains: self.r.non_empty_text(node, "the log text to wait for")?,
            }),
        }
    }

    pub(super) fn port_with_span(&mut self, node: &Node, info: &mut ServiceInfo) -> Option<u16> {
        let port = self.r.port(node)?;
        info.health_port = Some((port, node.span));
        Some(port)
    }

    pub(super) fn http_path(&mut self, node: Option<&Node>) -> Option<String> {
        let Some(node) = node else { return Some("/".to_owned()) };
        let path = self.r.text(node, "a path such as `/health`")?;
        if !path.starts_with('/') {
            self.r
                .error(node.span, format!("path `{path}` does not start with `/`"), "not a path")
                .help(format!("write `/{path}`"));
            return None;
        }
        Some(path)
    }

    pub(super) fn depends_on(
        &mut self,
        node: &Node,
        info: &mut ServiceInfo,
    ) -> Option<Vec<String>> {
        let items = self.r.list(node, "a list of service names")?;
        let mut names = Some(Vec::with_capacity(items.len()));
        for item in items {
            let Some(name) = self.r.text(item, "a service name") else {
                names = None;
                continue;
            };
            if info.depends_on.iter().any(|(n, _)| *n == name) {
                self.r.error(
                    item.span,
                    format!("`{name}` is listed twice in `depends-on`"),
                    "listed again",
                );
                names = None;
                continue;
            }
            info.depends_on.push((name.clone(), item.span));
            if let Some(names) = &mut names {
                names.push(name);
            }
        }
        names
    }

    /// Checks across services: dependencies, dependency cycles, template references, health ports.
    pub(super) fn check_services(&mut self, services: &Services) {
        for (name, info) in &services.0 {
            for (dependency, span) in &info.depends_on {
                if dependency == name {
                    self.r
                        .error(*span, format!("`{name}` depends on itself"), "itself")
                        .help("remove it from `depends-on`");
                } else {
                    self.known_service(services, dependency, *span);
                }
            }
            for (reference, span) in &info.env_refs {
                let Some(target) = template::service(reference) else { continue };
                let Some(target_info) = self.known_service(services, target, *span) else {
                    continue;
                };
                let needs_port =
                    matches!(reference, Reference::ServicePort(_) | Reference::ServiceAddr(_));
                if needs_port && target_info.ports.as_ref().is_some_and(Vec::is_empty) {
                    self.r.error(*span, format!("`{target}` has no ports"), "needs a port").help(
                        format!(
                            "`port` and `addr` use the first of `ports`; declare one on `{target}`"
                        ),
                    );
                }
            }
            if let Some((port, span)) = info.health_port {
                self.declared_port(name, info, port, span);
            }
        }
        let graph: IndexMap<&str, Vec<&str>> = services
            .0
            .iter()
            .map(|(name, info)| {
                let known = info
                    .depends_on
                    .iter()
                    .map(|(d, _)| d.as_str())
                    .filter(|d| services.0.contains_key(*d));
                (name.as_str(), known.filter(|d| d != name).collect())
            })
            .collect();
        for cycle in cycles(&graph) {
            let (first, second) = (cycle[0], cycle[1]);
            let info = &services.0[first];
            let span =
                info.depends_on.iter().find(|(d, _)| d == second).map_or(info.key, |(_, s)| *s);
            let path: Vec<String> = cycle.iter().map(|n| format!("`{n}`")).collect();
            self.r
                .error(span, format!("dependency cycle: {}", path.join(" → ")), "closes a cycle")
                .help(
                    "services start in `depends-on` order, so one of these dependencies has to go",
                );
        }
    }

    pub(super) fn known_service<'i>(
        &mut self,
        services: &'i Services,
        name: &str,
        span: Span,
    ) -> Option<&'i ServiceInfo> {
        if let Some(info) = services.0.get(name) {
            return Some(info);
        }
        let hint = match suggest::closest(name, services.0.keys().map(String::as_str)) {
            Some(close) => format!("did you mean `{close}`?"),
            None if services.0.is_empty() => "no services are declared".to_owned(),
            None => format!(
                "declared services: {}",
                suggest::list_all(services.0.keys().map(String::as_str))
            ),
        };
        self.r
            .error(span, format!("unknown service `{name}`"), "not in `stack.services`")
            .help(hint);
        None
    }

    pub(super) fn declared_port(
        &mut self,
        service: &str,
        info: &ServiceInfo,
        port: u16,
        span: Span,
    ) {
        let Some(ports) = &info.ports else { return };
        if ports.contains(&port) {
            return;
        }
        let hint = if ports.is_empty() {
            format!("`{service}` declares no ports; add `ports: [{port}]`")
        } else {
            let list: Vec<String> = ports.iter().map(u16::to_string).collect();
            format!("`{service}` declares {}", list.join(", "))
        };
        self.r
            .error(
                span,
                format!("port {port} is not declared in `ports` of `{service}`"),
                "not declared",
            )
            .help(hint);
    }
}

/// Every dependency cycle, each once, as a path that starts at its earliest-declared member and
/// returns to it (`a → b → a`).
fn cycles<'a>(graph: &IndexMap<&'a str, Vec<&'a str>>) -> Vec<Vec<&'a str>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    fn visit<'a>(
        node: usize,
        graph: &IndexMap<&'a str, Vec<&'a str>>,
        marks: &mut [Mark],
        path: &mut Vec<usize>,
        found: &mut Vec<Vec<&'a str>>,
    ) {
        marks[node] = Mark::Open;
        path.push(node);
        for next in &graph[node] {
            let Some(next) = graph.get_index_of(next) else { continue };
            match marks[next] {
                Mark::New => visit(next, graph, marks, path, found),
                Mark::Open => {
                    let from =
                        path.iter().position(|&n| n == next).expect("open nodes are on the path");
                    let mut cycle: Vec<usize> = path[from..].to_vec();
                    let lowest =
                        cycle.iter().enumerate().min_by_key(|(_, n)| **n).map_or(0, |(i, _)| i);
                    cycle.rotate_left(lowest);
                    cycle.push(cycle[0]);
                    found.push(
                        cycle
                            .into_iter()
                            .map(|n| *graph.get_index(n).expect("index from graph").0)
                            .collect(),
                    );
                }
                Mark::Done => {}
            }
        }
        path.pop();
        marks[node] = Mark::Done;
    }
    let mut marks = vec![Mark::New; graph.len()];
    let mut found = Vec::new();
    for node in 0..graph.len() {
        if marks[node] == Mark::New {
            visit(node, graph, &mut marks, &mut Vec::new(), &mut found);
        }
    }
    found.sort();
    found.dedup();
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph<'a>(edges: &[(&'a str, &[&'a str])]) -> IndexMap<&'a str, Vec<&'a str>> {
        edges.iter().map(|(node, deps)| (*node, deps.to_vec())).collect()
    }

    #[test]
    fn finds_cycles_once_from_their_first_member() {
        let found = cycles(&graph(&[("a", &["b"]), ("b", &["c"]), ("c", &["a"]), ("d", &["a"])]));
        assert_eq!(found, [vec!["a", "b", "c", "a"]]);
        let found = cycles(&graph(&[("x", &[]), ("b", &["a"]), ("a", &["b"])]));
        assert_eq!(found, [vec!["b", "a", "b"]]);
        let found = cycles(&graph(&[("a", &["b", "c"]), ("b", &["a"]), ("c", &["a"])]));
        assert_eq!(found, [vec!["a", "b", "a"], vec!["a", "c", "a"]]);
        assert!(cycles(&graph(&[("a", &["b"]), ("b", &[]), ("c", &["a", "b"])])).is_empty());
    }

    #[test]
    fn stop_grace_period_is_read_into_the_container_settings() {
        let source = "name: t
stack:
  services:
    worker: { image: w, stop-grace-period: 45s }
    web: { image: n }
";
        let scenario = crate::scenario::parse(source, std::path::Path::new("t.yaml")).unwrap();
        let grace = |name: &str| scenario.stack.services[name].container.stop_grace_period;
        assert_eq!(grace("worker"), Some(Duration::from_secs(45)));
        assert_eq!(grace("web"), None);
        // A `stop` step without `timeout` gives the service's grace, as `docker stop` does.
        let steps = format!(
            "{source}steps:\n  - stop: {{ service: worker }}\n  - stop: {{ service: web }}\n"
        );
        let scenario = crate::scenario::parse(&steps, std::path::Path::new("t.yaml")).unwrap();
        let timeouts: Vec<_> = scenario
            .steps
            .iter()
            .map(|step| match &step.action {
                crate::scenario::model::Action::Container(action) => action.op.clone(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            timeouts,
            [
                crate::scenario::model::ContainerOp::Stop { timeout: Duration::from_secs(45) },
                crate::scenario::model::ContainerOp::Stop { timeout: Duration::from_secs(10) },
            ]
        );
        let invalid =
            crate::scenario::parse(&source.replace("45s", "soon"), std::path::Path::new("t.yaml"))
                .unwrap_err();
        assert_eq!(invalid.diagnostics.len(), 1, "{:?}", invalid.diagnostics);
        assert_eq!(invalid.diagnostics[0].line, 4);
    }
}
