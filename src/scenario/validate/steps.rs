//! `steady-state` probes and `steps`: shapes, signals, probe targets, and settling names
//! (explicit ones unique, generated ones numbered).

use crate::scenario::keys;
use std::time::Duration;

use indexmap::IndexMap;

use super::traffic::TrafficTable;
use super::upgrade::EarlierUpgrades;
use super::walk::{AtDraft, Naming, Services, StepDraft, StepKind, StepTable, UpgradeInfo, Walk};
use crate::scenario::model::{
    Action, ActionKind, Anchor, ContainerAction, ContainerOp, KillProcess, ParallelChild, Probe,
    ProbeKind, Step, StepMoment, TcpExchange,
};
use crate::scenario::read::Fields;
use crate::scenario::report::Span;
use crate::scenario::tree::Node;
use crate::scenario::{duration, suggest};

/// Signals by name (without `SIG`) and Linux number.
const SIGNALS: &[(&str, i64)] = &[
    ("HUP", 1),
    ("INT", 2),
    ("QUIT", 3),
    ("KILL", 9),
    ("USR1", 10),
    ("USR2", 12),
    ("TERM", 15),
    ("CONT", 18),
    ("STOP", 19),
];

impl Walk<'_> {
    pub(super) fn steady_state(&mut self, node: &Node, services: &Services) -> Option<Vec<Probe>> {
        let items = self.r.list(node, "a list of probes")?;
        let mut probes = Vec::with_capacity(items.len());
        let mut namings = Vec::with_capacity(items.len());
        for item in items {
            let at = self.r.head(item);
            let Some(fields) = self.r.fields(
                item,
                at,
                "a steady-state probe",
                "a probe such as `{ tcp: { service: db, port: 5432, connect-is-enough: true } }`",
                &keys::PROBE,
            ) else {
                probes.push(None);
                namings.push(Naming { explicit: None, generated: None });
                continue;
            };
            let explicit = self.explicit_name(&fields);
            let probe = self.probe(&fields, services);
            namings.push(Naming { explicit, generated: probe.as_ref().map(|p| p.name.clone()) });
            probes.push(probe);
        }
        let names = self.settle_names(namings, "probe");
        probes
            .into_iter()
            .zip(names)
            .map(|(probe, name)| Some(Probe { name: name?, ..probe? }))
            .collect()
    }

    pub(super) fn explicit_name(&mut self, fields: &Fields<'_>) -> Option<(String, Span)> {
        let node = fields.get("name")?;
        self.r.non_empty_text(node, "a name").map(|name| (name, node.span))
    }

    /// A probe from a mapping holding `http` or `tcp` and `timeout`; named with its generated name.
    pub(super) fn probe(&mut self, fields: &Fields<'_>, services: &Services) -> Option<Probe> {
        let kind = match fields.present(&["http", "tcp"]).as_slice() {
            [] => {
                self.r
                    .error(
                        fields.at,
                        format!("missing `http` or `tcp` in {}", fields.context),
                        "needs a probe",
                    )
                    .help("add `http: { service, port, path }` or `tcp: { service, port }`");
                None
            }
            [(kind, entry)] => self.probe_kind(kind, &entry.value, entry.key.span, services),
            [_, (_, entry), ..] => {
                self.r
                    .error(
                        entry.key.span,
                        format!("{} has both `http` and `tcp`", fields.context),
                        "second probe",
                    )
                    .help("a probe is exactly one of `http` or `tcp`");
                None
            }
        };
        let timeout =
            fields.get("timeout").map_or(Some(Duration::from_secs(2)), |n| self.r.duration(n));
        let kind = kind?;
        let name = match &kind {
            ProbeKind::Http { service, port, method, path, .. } if method == "GET" => {
                format!("http {service}:{port}{path}")
            }
            ProbeKind::Http { service, port, method, path, .. } => {
                format!("http {method} {service}:{port}{path}")
            }
            ProbeKind::Tcp { service, port, .. } => format!("tcp {service}:{port}"),
        };
        Some(Probe { name, kind, timeout: timeout? })
    }

    pub(super) fn probe_kind(
        &mut self,
        kind: &str,
        node: &Node,
        key: Span,
        services: &Services,
    ) -> Option<ProbeKind> {
        let (context, keys) = if kind == "http" {
            ("an `http` probe", &keys::HTTP_PROBE)
        } else {
            ("a `tcp` probe", &keys::TCP_PROBE)
        };
        let fields =
            self.r.fields(node, key, context, "a mapping with `service` and `port`", keys)?;
        let service_node = self.r.require(&fields, "service");
        let service = service_node.and_then(|n| self.r.text(n, "a service name"));
        let info = match (&service, service_node) {
            (Some(name), Some(node)) => self.known_service(services, name, node.span),
            _ => None,
        };
        let port_node = self.r.require(&fields, "port");
        let port = port_node.and_then(|n| self.r.port(n));
        if let (Some(name), Some(info), Some(port), Some(node)) = (&service, info, port, port_node)
        {
            self.declared_port(name, info, port, node.span);
        }
        if kind == "tcp" {
            let exchange = self.tcp_exchange(&fields, node, "a `tcp` probe");
            return Some(ProbeKind::Tcp { service: service?, port: port?, exchange: exchange? });
        }
        let path = self.http_path(fields.get("path"));
        let status = fields.get("status").map_or(Some(200), |n| self.r.status(n));
        let method = match fields.get("method") {
            None => Some("GET".to_owned()),
            Some(node) => self.method(node),
        };
        let body_contains = match fields.get("body-contains") {
            None => Some(None),
            Some(node) => self.r.non_empty_text(node, "the text the body must contain").map(Some),
        };
        Some(ProbeKind::Http {
            service: service?,
            port: port?,
            method: method?,
            path: path?,
            status: status?,
            body_contains: body_contains?,
        })
    }

    /// `send`, `expect` and `connect-is-enough` of a TCP health check or probe: `expect` (with an
    /// optional `send`), or `connect-is-enough: true`, never both, never neither.
    pub(super) fn tcp_exchange(
        &mut self,
        fields: &Fields<'_>,
        node: &Node,
        context: &str,
    ) -> Option<TcpExchange> {
        let send = match fields.get("send") {
            None => Some(None),
            Some(n) => self.r.non_empty_text(n, "the text to send").map(Some),
        };
        let expect = match fields.get("expect") {
            None => Some(None),
            Some(n) => self.r.non_empty_text(n, "the text the answer must contain").map(Some),
        };
        let connect_is_enough = match fields.get("connect-is-enough") {
            None => Some(false),
            Some(n) => self.r.boolean(n, "`true` or `false`"),
        };
        let (send, expect, connect_is_enough) = (send?, expect?, connect_is_enough?);
        let example = "`send: \"PING\\r\\n\"` and `expect: \"+PONG\"` for redis";
        if connect_is_enough && (send.is_some() || expect.is_some()) {
            let at = fields.get("connect-is-enough").map_or(node.span, |n| n.span);
            self.r
                .error(at, format!("{context} has an exchange and `connect-is-enough`"), "both")
                .help("keep `send`/`expect` (an exchange proves more) or remove them");
            return None;
        }
        if send.is_some() && expect.is_none() {
            let at = fields.get("send").map_or(node.span, |n| n.span);
            self.r
                .error(at, format!("{context} sends without `expect`"), "no answer expected")
                .help(format!("say what the answer contains: {example}"));
            return None;
        }
        if expect.is_none() && !connect_is_enough {
            self.r
                .error(
                    node.span,
                    format!("{context} needs `expect` or `connect-is-enough: true`"),
                    "a connect alone proves little",
                )
                .help(format!(
                    "Docker's port proxy and a frozen container's kernel accept connections: \
                     add an exchange, e.g. {example}, or `connect-is-enough: true`"
                ));
            return None;
        }
        Some(TcpExchange { send, expect, connect_is_enough })
    }

    pub(super) fn method(&mut self, node: &Node) -> Option<String> {
        let method = self.r.text(node, "an HTTP method")?.to_ascii_uppercase();
        if keys::METHODS.contains(&method.as_str()) {
            return Some(method);
        }
        self.r
            .error(node.span, format!("unknown HTTP method `{method}`"), "unknown method")
            .help(format!("use {}", suggest::list(keys::METHODS.iter().copied())));
        None
    }

    // ----- steps ---------------------------------------------------------------------------------

    pub(super) fn steps(
        &mut self,
        node: &Node,
        services: &Services,
        traffic: &TrafficTable,
    ) -> (Option<Vec<Step>>, StepTable) {
        let Some(items) = self.r.list(node, "a list of steps") else {
            return (None, StepTable { names: IndexMap::new(), incomplete: true });
        };
        let mut earlier = EarlierUpgrades::default();
        let drafts: Vec<StepDraft> = items
            .iter()
            .map(|item| self.step(item, services, traffic, &mut earlier, false))
            .collect();
        // Names are unique across the whole timeline, `parallel` children included: `expect`
        // names any step.
        let mut namings = Vec::new();
        flatten_namings(&drafts, &mut namings);
        let names = self.settle_names(namings, "step");
        let mut table = StepTable { names: IndexMap::new(), incomplete: false };
        let mut next = Numbering { names: names.into_iter(), index: 0 };
        let mut problems = Vec::new();
        let (steps, _) = assemble(drafts, &mut next, &mut table, &mut problems);
        for problem in problems {
            self.r.error(problem.span, problem.message, problem.label).help(problem.help);
        }
        let steps = steps.map(|steps| steps.into_iter().map(|(_, _, step)| step).collect());
        (steps, table)
    }

    pub(super) fn step(
        &mut self,
        node: &Node,
        services: &Services,
        traffic: &TrafficTable,
        earlier: &mut EarlierUpgrades,
        nested: bool,
    ) -> StepDraft {
        let mut draft = StepDraft {
            explicit: None,
            generated: None,
            action: None,
            kind: None,
            action_key: None,
            fault: None,
            children: None,
            delay: Some(Duration::ZERO),
            at: Ok(None),
        };
        self.step_fields(&mut draft, node, services, traffic, earlier, nested);
        match &draft.kind {
            None | Some(StepKind::Upgrade(UpgradeInfo { service: None, .. })) => {
                earlier.unsure = true;
            }
            Some(StepKind::Upgrade(info)) => earlier.services.extend(info.service.clone()),
            Some(_) => {}
        }
        draft
    }

    fn step_fields(
        &mut self,
        draft: &mut StepDraft,
        node: &Node,
        services: &Services,
        traffic: &TrafficTable,
        earlier: &mut EarlierUpgrades,
        nested: bool,
    ) {
        let at = self.r.head(node);
        let actions = keys::STEP.choices();
        let Some(fields) =
            self.r.fields(node, at, "a step", "a step such as `- wait: 5s`", &keys::STEP)
        else {
            if node.scalar().is_some() {
                self.r
                    .last()
                    .help("a step is a mapping with one action, e.g. `- kill: { service: db }`");
            }
            return;
        };
        draft.explicit = self.explicit_name(&fields);
        if let Some(entry) = fields.entry("delay") {
            draft.delay = self.delay(&entry.value, entry.key.span, nested);
        }
        if let Some(entry) = fields.entry("at") {
            draft.at = self.step_at(&entry.value, entry.key.span, nested).map(Some).ok_or(());
        }
        let (action_key, entry) = match fields.present(&actions).as_slice() {
            [] => {
                self.r
                    .error(at, "missing action in step", "no action")
                    .help(format!("add one of {}", suggest::list(actions.iter().copied())));
                return;
            }
            [(key, entry)] => (*key, *entry),
            [(first, _), (second, entry), ..] => {
                self.r
                    .error(
                        entry.key.span,
                        format!("a step has one action, this one has `{first}` and `{second}`"),
                        "second action",
                    )
                    .help("split it into two steps");
                return;
            }
        };
        let kind = ActionKind::from_key(action_key).expect("a listed key");
        let action_key = kind.key();
        draft.action_key = Some((kind, entry.key.span));
        draft.kind =
            Some(if kind == ActionKind::Probe { StepKind::Probe } else { StepKind::Other });
        let value = &entry.value;
        // Every kind is handled here: a new one makes the compiler point at this match.
        match kind {
            ActionKind::Upgrade => {
                let (info, upgrade) = self.upgrade(value, entry.key.span, services, traffic);
                draft.generated = info.service.as_ref().map(|service| format!("upgrade {service}"));
                draft.action = upgrade.map(|upgrade| Action::Upgrade(Box::new(upgrade)));
                draft.kind = Some(StepKind::Upgrade(info));
            }
            ActionKind::Rollback => {
                let (written, service) = self.rollback(value, entry.key.span, services, earlier);
                draft.generated = written.map(|service| format!("rollback {service}"));
                draft.action = service.map(|service| Action::Rollback { service });
            }
            ActionKind::Wait => {
                if let Some(duration) = self.r.duration(value) {
                    draft.generated = Some(format!("wait {}", duration::format(duration)));
                    draft.action = Some(Action::Wait(duration));
                }
            }
            ActionKind::Probe => self.probe_step(draft, value, entry.key.span, services),
            ActionKind::Memory
            | ActionKind::Cpu
            | ActionKind::Partition
            | ActionKind::Packet
            | ActionKind::Dns
            | ActionKind::DiskFill
            | ActionKind::ClockSkew
            | ActionKind::IoLimit => {
                let (service, fault) = self.fault(action_key, value, entry.key.span, services);
                draft.generated = service.as_ref().map(|service| format!("{action_key} {service}"));
                draft.fault = service.map(|service| (action_key, service));
                draft.action = fault.map(Action::Fault);
            }
            ActionKind::SinkOutage => self.sink_outage(draft, value, entry.key.span),
            ActionKind::NodeAvailability => self.node_availability(draft, value, entry.key.span),
            ActionKind::Call => self.call(draft, value, entry.key.span, services),
            ActionKind::Human => {
                self.human(draft, value, entry.key.span, services, (earlier, nested))
            }
            ActionKind::Mark => self.mark(draft, value),
            ActionKind::KillProcess => {
                let (service, action) = self.kill_process(value, entry.key.span, services);
                draft.generated = service.map(|service| format!("kill-process {service}"));
                draft.action = action.map(Action::KillProcess);
            }
            ActionKind::Latency
            | ActionKind::Bandwidth
            | ActionKind::Timeout
            | ActionKind::ResetPeer
            | ActionKind::SlowClose
            | ActionKind::Slicer
            | ActionKind::LimitData
            | ActionKind::Down
            | ActionKind::HttpError
            | ActionKind::HttpDelay
            | ActionKind::HttpAbort
            | ActionKind::HttpTruncate
            | ActionKind::Cut => {
                let (name, fault) = self.link_fault(action_key, value, entry.key.span);
                draft.generated = name.map(|name| format!("{action_key} {name}"));
                draft.action = fault.map(Action::LinkFault);
            }
            ActionKind::Parallel => {
                draft.generated = Some("parallel".to_owned());
                let mut read_child = |walk: &mut Self, item: &Node| {
                    walk.step(item, services, traffic, earlier, true)
                };
                draft.children = self.parallel(value, entry.key.span, nested, &mut read_child);
            }
            ActionKind::Kill
            | ActionKind::Stop
            | ActionKind::Start
            | ActionKind::Restart
            | ActionKind::Pause
            | ActionKind::Unpause => {
                let (service, action) =
                    self.container_action(kind, value, entry.key.span, services);
                draft.generated = service.map(|service| format!("{action_key} {service}"));
                draft.action = action.map(Action::Container);
            }
        }
    }

    /// A `parallel` child's `at: { step, event }`; the sibling is checked in [`assemble`].
    fn step_at(&mut self, node: &Node, key: Span, nested: bool) -> Option<AtDraft> {
        if !nested {
            self.r.error(key, "`at` outside a `parallel` group", "not allowed here").help(
                "`at` starts a `parallel` child at a moment of a sibling; put this step and that one in a `parallel` group",
            );
            return None;
        }
        let fields = self.r.fields(
            node,
            key,
            "`at`",
            "a sibling's moment such as `{ step: upgrade billing, event: healthy }`",
            &keys::STEP_AT,
        )?;
        let step = self.r.require(&fields, "step").and_then(|n| {
            let span = n.span;
            self.r.non_empty_text(n, "a step name").map(|name| (name, span))
        });
        let event = match fields.get("event") {
            None => Some((StepMoment::Started, step.as_ref().map_or(key, |(_, span)| *span))),
            Some(n) => self.moment(n).map(|moment| (moment, n.span)),
        };
        Some(AtDraft { step: step?, event: event? })
    }

    /// A `probe` step: a probe without `name` (the step's name names it).
    fn probe_step(&mut self, draft: &mut StepDraft, value: &Node, key: Span, services: &Services) {
        let Some(fields) = self.r.fields(
            value,
            key,
            "`probe`",
            "a probe such as `{ tcp: { service: db, port: 5432, connect-is-enough: true } }`",
            &keys::PROBE_STEP,
        ) else {
            return;
        };
        if let Some(name) = fields.entry("name") {
            self.r
                .error(name.key.span, "unknown key `name` in `probe`", "unknown key")
                .help("name the step instead: `- name: ...` next to `probe:`");
        }
        if let Some(mut probe) = self.probe(&fields, services) {
            draft.generated = Some(format!("probe {}", probe.name));
            if let Some((name, _)) = &draft.explicit {
                probe.name.clone_from(name);
            }
            draft.action = Some(Action::Probe(probe));
        }
    }

    /// A container action; also returns the service name as written, to name the step even when the
    /// action has other mistakes.
    pub(super) fn container_action(
        &mut self,
        kind: ActionKind,
        node: &Node,
        key: Span,
        services: &Services,
    ) -> (Option<String>, Option<ContainerAction>) {
        let op = kind.key();
        let keys = keys::STEP.section_of(op);
        let context = format!("`{op}`");
        let Some(fields) = self.r.fields(node, key, context, "a mapping with `service`", keys)
        else {
            if let Some(scalar) = node.scalar() {
                self.r.last().help(format!("write `{op}: {{ service: {} }}`", scalar.text));
            }
            return (None, None);
        };
        let service_node = self.r.require(&fields, "service");
        let service = service_node.and_then(|n| self.r.text(n, "a service name"));
        let known = match (&service, service_node) {
            (Some(name), Some(node)) => self.known_service(services, name, node.span).is_some(),
            _ => false,
        };
        let undo_after = match fields.entry("for") {
            None => Some(None),
            Some(entry) if kind.undone_by().is_some() => self.r.duration(&entry.value).map(Some),
            Some(entry) => {
                let undo = if op == "unpause" {
                    "`pause` with `for`"
                } else {
                    "a `kill`, `stop` or `pause` with `for`"
                };
                let message = format!("`for` is not allowed on `{op}`");
                self.r.error(entry.key.span, message, "not allowed here").help(format!(
                    "`for` undoes a fault after a while; `{op}` is not undone, use {undo} instead"
                ));
                None
            }
        };
        let op = match kind {
            ActionKind::Kill => fields
                .get("signal")
                .map_or(Some("SIGKILL".to_owned()), |n| self.signal(n))
                .map(|signal| ContainerOp::Kill { signal }),
            ActionKind::Stop => {
                // Without `timeout`, as `docker stop` does: the service's grace period, else 10 s.
                let grace = service
                    .as_ref()
                    .and_then(|name| services.0.get(name))
                    .and_then(|info| info.service.as_ref())
                    .and_then(|service| service.container.stop_grace_period)
                    .unwrap_or(Duration::from_secs(10));
                fields
                    .get("timeout")
                    .map_or(Some(grace), |n| self.r.duration(n))
                    .map(|timeout| ContainerOp::Stop { timeout })
            }
            ActionKind::Start => Some(ContainerOp::Start),
            ActionKind::Restart => Some(ContainerOp::Restart),
            ActionKind::Pause => Some(ContainerOp::Pause),
            ActionKind::Unpause => Some(ContainerOp::Unpause),
            other => unreachable!("`{}` is not a container action", other.key()),
        };
        let action = (|| {
            let service = service.clone().filter(|_| known)?;
            Some(ContainerAction { service, op: op?, undo_after: undo_after? })
        })();
        (service, action)
    }

    /// `kill-process: { service, name, signal }`; also returns the service name as written.
    pub(super) fn kill_process(
        &mut self,
        node: &Node,
        key: Span,
        services: &Services,
    ) -> (Option<String>, Option<KillProcess>) {
        let keys = &keys::KILL_PROCESS;
        let expected = "a mapping with `service` and `name`";
        let Some(fields) = self.r.fields(node, key, "`kill-process`".to_owned(), expected, keys)
        else {
            self.r.last().help("write `kill-process: { service: web, name: worker }`");
            return (None, None);
        };
        let service_node = self.r.require(&fields, "service");
        let service = service_node.and_then(|n| self.r.text(n, "a service name"));
        let known = match (&service, service_node) {
            (Some(name), Some(node)) => self.known_service(services, name, node.span).is_some(),
            _ => false,
        };
        let name = self.r.require(&fields, "name").and_then(|n| {
            let text = self.r.non_empty_text(n, "a process name such as `worker`")?;
            if text.contains('/') || text.contains(char::is_whitespace) {
                let message = format!("invalid process name `{text}`");
                self.r.error(n.span, message, "a name, not a path or a command line").help(
                    "write the program's file name (`celery`, `nginx`); it matches the process's \
                     command name or the file name of its first or second command-line word",
                );
                return None;
            }
            Some(text)
        });
        let signal = fields.get("signal").map_or(Some("SIGKILL".to_owned()), |n| self.signal(n));
        let action = (|| {
            let service = service.clone().filter(|_| known)?;
            Some(KillProcess { service, name: name?, signal: signal? })
        })();
        (service, action)
    }

    pub(super) fn signal(&mut self, node: &Node) -> Option<String> {
        let text = self.r.text(node, "a signal such as `SIGTERM`")?;
        if let Ok(number) = text.parse::<i64>() {
            if (1..=64).contains(&number) {
                return Some(match SIGNALS.iter().find(|(_, n)| *n == number) {
                    Some((name, _)) => format!("SIG{name}"),
                    None => number.to_string(),
                });
            }
        } else {
            let upper = text.to_ascii_uppercase();
            let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
            if SIGNALS.iter().any(|(name, _)| *name == bare) {
                return Some(format!("SIG{bare}"));
            }
        }
        let names: Vec<String> = SIGNALS.iter().map(|(name, _)| format!("SIG{name}")).collect();
        let hint =
            match suggest::closest(&text.to_ascii_uppercase(), names.iter().map(String::as_str)) {
                Some(close) => format!("did you mean `{close}`?"),
                None => format!(
                    "use {}, or a number from 1 to 64",
                    suggest::list(names.iter().map(String::as_str))
                ),
            };
        self.r.error(node.span, format!("unknown signal `{text}`"), "unknown signal").help(hint);
        None
    }

    /// Settle the names of a list: explicit names must be unique; generated names that collide get
    /// ` (2)`, ` (3)`, ... in order.
    pub(super) fn settle_names(&mut self, items: Vec<Naming>, what: &str) -> Vec<Option<String>> {
        let mut used: IndexMap<String, Span> = IndexMap::new();
        let mut names: Vec<Option<String>> = vec![None; items.len()];
        for (index, item) in items.iter().enumerate() {
            let Some((name, span)) = &item.explicit else { continue };
            if let Some(first) = used.get(name) {
                let line = self.r.line(*first);
                self.r
                    .error(*span, format!("duplicate {what} name `{name}`"), "used again here")
                    .help(format!(
                        "`{name}` already names the {what} on line {line}; {what} names must be unique"
                    ));
            } else {
                used.insert(name.clone(), *span);
                names[index] = Some(name.clone());
            }
        }
        for (index, item) in items.into_iter().enumerate() {
            if item.explicit.is_some() {
                continue;
            }
            let Some(base) = item.generated else { continue };
            let mut name = base.clone();
            let mut n = 1;
            while used.contains_key(&name) {
                n += 1;
                name = format!("{base} ({n})");
            }
            used.insert(name.clone(), Span::default());
            names[index] = Some(name);
        }
        names
    }
}

/// Settled names, handed out in document order, and the next index.
struct Numbering {
    names: std::vec::IntoIter<Option<String>>,
    index: usize,
}

/// Every draft's naming, depth first (a group before its children).
fn flatten_namings(drafts: &[StepDraft], out: &mut Vec<Naming>) {
    for draft in drafts {
        out.push(Naming { explicit: draft.explicit.clone(), generated: draft.generated.clone() });
        if let Some(children) = &draft.children {
            flatten_namings(children, out);
        }
    }
}

/// A problem with a `parallel` child's `at`, found once names are settled.
struct AtProblem {
    span: Span,
    message: String,
    label: &'static str,
    help: String,
}

/// A `parallel` child as assembled: its `delay`, its `at` and the step.
type Child = (Duration, Option<Anchor>, Step);

/// Drafts → steps with their delays, names and indexes taken in the order of
/// [`flatten_namings`]; every name goes into the table even when a step is broken. Problems of
/// a child's `at` (which names a sibling) go to `problems`. Also returns the names at this level.
fn assemble(
    drafts: Vec<StepDraft>,
    next: &mut Numbering,
    table: &mut StepTable,
    problems: &mut Vec<AtProblem>,
) -> (Option<Vec<Child>>, Vec<Option<String>>) {
    let mut steps = Some(Vec::with_capacity(drafts.len()));
    let mut level_names = Vec::with_capacity(drafts.len());
    for mut draft in drafts {
        let index = next.index;
        next.index += 1;
        let name = next.names.next().flatten();
        match &name {
            Some(name) => {
                table.names.insert(name.clone(), draft.kind.clone());
            }
            None => table.incomplete = true,
        }
        level_names.push(name.clone());
        let action = match draft.children.take() {
            Some(mut children) => {
                let kinds: Vec<Option<ActionKind>> =
                    children.iter().map(|c| c.action_key.map(|(kind, _)| kind)).collect();
                let ats: Vec<Result<Option<AtDraft>, ()>> =
                    children.iter_mut().map(|c| std::mem::replace(&mut c.at, Ok(None))).collect();
                let (assembled, names) = assemble(children, next, table, problems);
                let anchors = anchors(ats, &names, &kinds, problems);
                assembled.zip(anchors).map(|(children, anchors)| {
                    Action::Parallel(
                        children
                            .into_iter()
                            .zip(anchors)
                            .map(|((delay, _, step), at)| ParallelChild { delay, at, step })
                            .collect(),
                    )
                })
            }
            None => draft.action,
        };
        match (&mut steps, name, action, draft.delay, draft.at) {
            (Some(steps), Some(name), Some(action), Some(delay), Ok(_)) => {
                steps.push((delay, None, Step { index, name, action }));
            }
            _ => steps = None,
        }
    }
    (steps, level_names)
}

/// The children's `at`s checked against their siblings (`names`, `kinds`: the group's children
/// in order): the sibling is another child of the same group, not itself anchored, and has the
/// moment (`switched` and `healthy` are an upgrade's, `rolled-back` an upgrade's, a rollback's or
/// a human step's). `None` when one is invalid.
fn anchors(
    ats: Vec<Result<Option<AtDraft>, ()>>,
    names: &[Option<String>],
    kinds: &[Option<ActionKind>],
    problems: &mut Vec<AtProblem>,
) -> Option<Vec<Option<Anchor>>> {
    let anchored: Vec<bool> = ats.iter().map(|at| matches!(at, Ok(Some(_)))).collect();
    let mut anchors = Some(Vec::with_capacity(ats.len()));
    for (i, at) in ats.into_iter().enumerate() {
        let anchor = match at {
            Err(()) => None,
            Ok(None) => Some(None),
            Ok(Some(at)) => check_anchor(i, at, names, kinds, &anchored, problems).map(Some),
        };
        match (&mut anchors, anchor) {
            (Some(anchors), Some(anchor)) => anchors.push(anchor),
            _ => anchors = None,
        }
    }
    anchors
}

fn check_anchor(
    child: usize,
    at: AtDraft,
    names: &[Option<String>],
    kinds: &[Option<ActionKind>],
    anchored: &[bool],
    problems: &mut Vec<AtProblem>,
) -> Option<Anchor> {
    let AtDraft { step: (step, span), event: (event, event_span) } = at;
    let siblings = || {
        names
            .iter()
            .enumerate()
            .filter(move |(j, _)| *j != child)
            .filter_map(|(_, name)| name.as_deref())
    };
    let Some(j) = names.iter().position(|name| name.as_deref() == Some(step.as_str())) else {
        // A sibling without a settled name has a mistake of its own, reported already.
        if names.iter().any(Option::is_none) {
            return None;
        }
        let help = match suggest::closest(&step, siblings()) {
            Some(close) => format!("did you mean `{close}`?"),
            None => match suggest::list(siblings()) {
                list if list.is_empty() => {
                    "the group has no other step to start at; add the step it should follow".into()
                }
                list => format!("`at` names a step of the same `parallel` group: {list}"),
            },
        };
        problems.push(AtProblem {
            span,
            message: format!("`{step}` is not a step of this `parallel` group"),
            label: "not a sibling",
            help,
        });
        return None;
    };
    if j == child {
        problems.push(AtProblem {
            span,
            message: format!("`{step}` starts at a moment of itself"),
            label: "itself",
            help: "`at` names another step of the same `parallel` group".into(),
        });
        return None;
    }
    if anchored[j] {
        problems.push(AtProblem {
            span,
            message: format!("`{step}` itself starts `at` a moment of another step"),
            label: "anchored too",
            help: "anchor both on the same step, with different `delay`s".into(),
        });
        return None;
    }
    // A sibling whose action could not be told has a mistake of its own, reported already.
    let kind = kinds[j]?;
    if !event.fits(kind) {
        problems.push(AtProblem {
            span: event_span,
            message: format!(
                "`{}` is a moment of {}, and `{step}` is a `{}` step",
                event.name(),
                event.of(),
                kind.key()
            ),
            label: "no such moment",
            help: "use `started` or `ended`, or name an upgrade step".into(),
        });
        return None;
    }
    Some(Anchor { step, event })
}
