//! Fault steps (`memory`, `cpu`, `partition`) and `parallel` groups: shapes, sizes, targets, and
//! the rules a group's children must keep (one upgrade at most, one fault of a kind per service).

use crate::scenario::keys;
use std::time::Duration;

use super::walk::{Services, StepDraft, Walk};
use crate::scenario::model::{
    DiskFill, DnsError, DnsFault, Fault, FaultKind, FillAmount, IoLimit, PacketFault, Target,
};
use crate::scenario::report::Span;
use crate::scenario::tree::{Node, ScalarKind};

/// Docker refuses memory limits under 6 MB.
const MIN_MEMORY: u64 = 6 * 1024 * 1024;

/// The CFS quota may not go under 1 ms per 100 ms period.
const MIN_CORES: f64 = 0.01;

impl Walk<'_> {
    /// A `memory`, `cpu` or `partition` step; also returns the service name as written, to name
    /// the step even when the fault has other mistakes.
    pub(super) fn fault(
        &mut self,
        kind: &str,
        node: &Node,
        key: Span,
        services: &Services,
    ) -> (Option<String>, Option<Fault>) {
        let keys = keys::STEP.section_of(kind);
        let example = match kind {
            "memory" => "`memory: { service: billing, limit: 48MiB, for: 30s }`",
            "cpu" => "`cpu: { service: billing, cores: 0.2, for: 30s }`",
            "packet" => "`packet: { service: web, loss: 10%, for: 30s }`",
            "dns" => "`dns: { service: web, names: redis, error: nxdomain, for: 30s }`",
            "disk-fill" => {
                "`disk-fill: { service: db, path: /var/lib/data, level: 95%, for: 30s }`"
            }
            "clock-skew" => "`clock-skew: { service: cache, offset: +2h, for: 10s }`",
            "io-limit" => {
                "`io-limit: { service: db, path: /var/lib/data, write-bps: 1MiB/s, for: 30s }`"
            }
            _ => "`partition: { service: db, for: 10s }`",
        };
        let context = format!("`{kind}`");
        let Some(fields) = self.r.fields(node, key, context, "a mapping with `service`", keys)
        else {
            self.r.last().help(format!("write {example}"));
            return (None, None);
        };
        let service_node = self.r.require(&fields, "service");
        let service = service_node.and_then(|n| self.r.text(n, "a service name"));
        let known = match (&service, service_node) {
            (Some(name), Some(node)) => self.known_service(services, name, node.span).is_some(),
            _ => false,
        };
        let duration = match fields.get("for") {
            Some(node) => self.r.duration(node),
            None => {
                self.r
                    .error(fields.at, format!("missing `for` in `{kind}`"), "needs `for`")
                    .help(format!("a fault lasts a while and is then reverted: {example}"));
                None
            }
        };
        let target = fields.get("target").map_or(Some(Target::All), |n| self.target(n));
        let fault_kind = match kind {
            "memory" => self
                .r
                .require(&fields, "limit")
                .and_then(|n| self.memory_limit(n))
                .map(|limit_bytes| FaultKind::Memory { limit_bytes }),
            "cpu" => self
                .r
                .require(&fields, "cores")
                .and_then(|n| self.cores(n))
                .map(|cores| FaultKind::Cpu { cores }),
            "packet" => self.packet(&fields, services, example),
            "dns" => self.dns(&fields, example),
            "disk-fill" => self.disk_fill(&fields, example),
            "io-limit" => self.io_limit(&fields, example),
            "clock-skew" => self.r.require(&fields, "offset").and_then(|node| {
                let text = node.scalar().map(|s| s.text.clone()).unwrap_or_default();
                match parse_offset(&text) {
                    Ok(offset_secs) => Some(FaultKind::ClockSkew { offset_secs }),
                    Err(why) => {
                        let message = format!("invalid clock offset `{text}`");
                        self.r
                            .error(node.span, message, why)
                            .help("write a signed duration such as +2h, -30m or +1h30m");
                        None
                    }
                }
            }),
            _ => Some(FaultKind::Partition),
        };
        let fault = (|| {
            let service = service.clone().filter(|_| known)?;
            Some(Fault { service, kind: fault_kind?, target: target?, duration: duration? })
        })();
        (service, fault)
    }

    /// A share written `10%` or `0.1`: a fraction from 0 to 1.
    fn fault_share(&mut self, node: &Node) -> Option<f64> {
        let help = "use a percentage such as 10% or a fraction such as 0.1";
        let Some(scalar) = node.scalar().filter(|s| s.kind() != ScalarKind::Null) else {
            self.r.wrong_type(node, "a percentage such as `10%`").help(help);
            return None;
        };
        let value = match scalar.kind() {
            ScalarKind::Int | ScalarKind::Float => {
                scalar.text.parse::<f64>().map_err(|_| "expected a number".to_owned())
            }
            _ => crate::scenario::quantity::parse_percent(&scalar.text).map(|p| p / 100.0),
        };
        match value {
            Ok(share) if share.is_finite() && share > 0.0 && share <= 1.0 => Some(share),
            Ok(_) => {
                let message = format!("`{}` is not a share above 0 and up to 100%", scalar.text);
                self.r.error(node.span, message, "out of range").help(help);
                None
            }
            Err(why) => {
                let message = format!("invalid share `{}`", scalar.text);
                self.r.error(node.span, message, why).help(help);
                None
            }
        }
    }

    fn packet(
        &mut self,
        fields: &crate::scenario::read::Fields<'_>,
        services: &Services,
        example: &str,
    ) -> Option<FaultKind> {
        let mut ok = true;
        let mut share = |walk: &mut Self, key: &str| match fields.get(key) {
            Some(node) => {
                let value = walk.fault_share(node);
                ok &= value.is_some();
                value
            }
            None => None,
        };
        let loss = share(self, "loss");
        let correlation = share(self, "correlation");
        let reorder = share(self, "reorder");
        let corrupt = share(self, "corrupt");
        let duplicate = share(self, "duplicate");
        let mut duration = |walk: &mut Self, key: &str| match fields.get(key) {
            Some(node) => {
                let value = walk.r.duration(node);
                ok &= value.is_some();
                value
            }
            None => None,
        };
        let delay = duration(self, "delay");
        let jitter = duration(self, "jitter");
        let rate_bytes = match fields.get("rate") {
            Some(node) => {
                let value = self.byte_rate(node);
                ok &= value.is_some();
                value
            }
            None => None,
        };
        let to = match fields.get("to") {
            Some(node) => {
                let name = self.r.text(node, "a service name");
                let known = name
                    .as_ref()
                    .is_some_and(|name| self.known_service(services, name, node.span).is_some());
                ok &= known;
                name
            }
            None => None,
        };
        let fault = PacketFault {
            loss,
            rate_bytes,
            to,
            delay,
            jitter,
            correlation,
            reorder,
            corrupt,
            duplicate,
        };
        if let (Some(node), true) = (fields.get("to"), fault.rate_bytes.is_some()) {
            self.r
                .error(node.span, "`to` narrows `loss` and the queued keys only", "not `rate`")
                .help("`rate` is a qdisc: it acts on every packet the container sends");
            return None;
        }
        // Keys that only mean something next to another: (key, needs, why).
        for (key, needs, what) in [
            ("jitter", "delay", "varies the delay"),
            ("correlation", "jitter", "ties each jitter draw to the last"),
            ("reorder", "delay", "sends a share at once, ahead of the delayed rest"),
        ] {
            if let (Some(node), None) = (fields.get(key), fields.get(needs)) {
                self.r
                    .error(node.span, format!("`{key}` without `{needs}`"), what)
                    .help(format!(
                        "give `{needs}`: `packet: {{ service: web, delay: 100ms, jitter: 10ms, correlation: 25%, for: 30s }}`"
                    ));
                ok = false;
            }
        }
        if ok && fault.loss.is_none() && fault.rate_bytes.is_none() && fault.queue_keys().is_empty()
        {
            self.r.error(fields.at, "`packet` names no fault", "nothing to do").help(format!(
                "give `loss`, `rate`, `delay`, `reorder`, `corrupt` or `duplicate`: {example}"
            ));
            return None;
        }
        ok.then_some(FaultKind::Packet(fault))
    }

    fn dns(
        &mut self,
        fields: &crate::scenario::read::Fields<'_>,
        example: &str,
    ) -> Option<FaultKind> {
        let names_node = self.r.require(fields, "names");
        let names = names_node.and_then(|node| match node.scalar() {
            Some(_) => self.r.non_empty_text(node, "a name").map(|name| vec![name]),
            None => self.r.list(node, "a name or a list of names").and_then(|items| {
                let names: Vec<Option<String>> =
                    items.iter().map(|item| self.r.non_empty_text(item, "a name")).collect();
                names.into_iter().collect::<Option<Vec<_>>>()
            }),
        });
        let names = names.map(|names| {
            names.iter().map(|n| n.trim_end_matches('.').to_ascii_lowercase()).collect::<Vec<_>>()
        });
        let error = match fields.get("error") {
            Some(node) => match node.scalar().map(|s| s.text.as_str()) {
                Some("nxdomain") => Some(Some(DnsError::Nxdomain)),
                Some("servfail") => Some(Some(DnsError::Servfail)),
                Some("drop") => Some(Some(DnsError::Drop)),
                Some(text) => {
                    let message = format!("unknown dns error `{text}`");
                    self.r.error(node.span, message, "unknown error").help(
                        "use `nxdomain` (no such name), `servfail` (server failure) or `drop` \
                         (no answer)",
                    );
                    None
                }
                None => {
                    self.r.wrong_type(node, "`nxdomain`, `servfail` or `drop`");
                    None
                }
            },
            None => Some(None),
        };
        let delay = match fields.get("delay") {
            Some(node) => self.r.duration(node).map(Some),
            None => Some(None),
        };
        let (error, delay) = (error?, delay?);
        if error.is_none() && delay.is_none() {
            self.r
                .error(fields.at, "`dns` needs `error` or `delay`", "nothing to do")
                .help(format!("write {example}"));
            return None;
        }
        Some(FaultKind::Dns(DnsFault { names: names?, error, delay }))
    }

    fn disk_fill(
        &mut self,
        fields: &crate::scenario::read::Fields<'_>,
        example: &str,
    ) -> Option<FaultKind> {
        let path = self.container_path(fields);
        let amount = match (fields.get("level"), fields.get("size")) {
            (Some(level), None) => match self.r.percent(level) {
                Some(percent) if percent > 0.0 => Some(FillAmount::Level(percent / 100.0)),
                Some(_) => {
                    self.r.error(level.span, "a fill level of 0%", "zero").help("use e.g. 95%");
                    None
                }
                None => None,
            },
            (None, Some(size)) => match size.scalar().map(|s| parse_bytes(&s.text)) {
                Some(Ok(bytes)) if bytes > 0 => Some(FillAmount::Bytes(bytes)),
                _ => {
                    self.r.wrong_type(size, "a size such as `64MiB`").help("use 64MiB or 1GiB");
                    None
                }
            },
            (Some(_), Some(size)) => {
                self.r
                    .error(size.span, "`disk-fill` takes `level` or `size`, not both", "both")
                    .help(format!("write {example}"));
                None
            }
            (None, None) => {
                self.r
                    .error(fields.at, "`disk-fill` needs `level` or `size`", "how much?")
                    .help(format!("write {example}"));
                None
            }
        };
        Some(FaultKind::DiskFill(DiskFill { path: path?, amount: amount? }))
    }

    /// The required `path` of a `disk-fill` or `io-limit`: absolute, without `..`.
    fn container_path(&mut self, fields: &crate::scenario::read::Fields<'_>) -> Option<String> {
        self.r.require(fields, "path").and_then(|node| {
            let path = self.r.non_empty_text(node, "an absolute path")?;
            if !path.starts_with('/') || path.split('/').any(|part| part == "..") {
                self.r
                    .error(node.span, format!("`{path}` is not an absolute path"), "not absolute")
                    .help(
                        "name a directory inside the container, such as /var/lib/postgresql/data",
                    );
                return None;
            }
            Some(path)
        })
    }

    fn io_limit(
        &mut self,
        fields: &crate::scenario::read::Fields<'_>,
        example: &str,
    ) -> Option<FaultKind> {
        let path = self.container_path(fields);
        let mut ok = true;
        let mut rate = |walk: &mut Self, key: &str| {
            let value = fields.get(key).map(|node| walk.io_rate(node));
            ok &= !matches!(value, Some(None));
            value.flatten()
        };
        let read_bps = rate(self, "read-bps");
        let write_bps = rate(self, "write-bps");
        let mut iops = |walk: &mut Self, key: &str| {
            let value = fields.get(key).map(|node| {
                walk.r
                    .integer(node, "operations per second", 1..=1_000_000)
                    .map(|n| u64::try_from(n).expect("checked range"))
            });
            ok &= !matches!(value, Some(None));
            value.flatten()
        };
        let read_iops = iops(self, "read-iops");
        let write_iops = iops(self, "write-iops");
        if ok && [read_bps, write_bps, read_iops, write_iops].iter().all(Option::is_none) {
            self.r.error(fields.at, "`io-limit` names no limit", "nothing to do").help(format!(
                "give `read-bps`, `write-bps`, `read-iops` or `write-iops`: {example}"
            ));
            return None;
        }
        let limit = IoLimit { path: path?, read_bps, write_bps, read_iops, write_iops };
        ok.then_some(FaultKind::IoLimit(limit))
    }

    /// An `io-limit` byte rate: `1MiB/s` (or `1MiB`), at least one byte per second.
    fn io_rate(&mut self, node: &Node) -> Option<u64> {
        let help = "use a rate such as 512KiB/s or 1MiB/s; leave the key out for no limit";
        let Some(scalar) = node.scalar().filter(|s| s.kind() != ScalarKind::Null) else {
            self.r.wrong_type(node, "a rate such as `1MiB/s`").help(help);
            return None;
        };
        let text = scalar.text.trim();
        match parse_bytes(text.strip_suffix("/s").unwrap_or(text)) {
            Ok(0) => {
                self.r.error(node.span, "an I/O limit of 0 bytes per second", "zero").help(help);
                None
            }
            Ok(bytes) => Some(bytes),
            Err(why) => {
                let message = format!("invalid rate `{}`", scalar.text);
                self.r.error(node.span, message, why).help(help);
                None
            }
        }
    }

    fn target(&mut self, node: &Node) -> Option<Target> {
        let help = "use `one`, `all`, or a number of containers such as `2`";
        match node.scalar() {
            Some(scalar) if scalar.kind() == ScalarKind::Int => {
                let count = self.r.integer(node, "a number of containers", 1..=1000)?;
                Some(Target::Count(usize::try_from(count).expect("checked range")))
            }
            Some(scalar) if scalar.text == "one" => Some(Target::One),
            Some(scalar) if scalar.text == "all" => Some(Target::All),
            Some(scalar) if scalar.kind() != ScalarKind::Null => {
                let message = format!("unknown target `{}`", scalar.text);
                self.r.error(node.span, message, "unknown target").help(help);
                None
            }
            _ => {
                self.r.wrong_type(node, "`one`, `all` or a number").help(help);
                None
            }
        }
    }

    fn memory_limit(&mut self, node: &Node) -> Option<u64> {
        let help = "use a size such as 48MiB, 512MiB or 1GiB";
        let Some(scalar) = node.scalar().filter(|s| s.kind() != ScalarKind::Null) else {
            self.r.wrong_type(node, "a size such as `48MiB`").help(help);
            return None;
        };
        match parse_bytes(&scalar.text) {
            Ok(bytes) if bytes >= MIN_MEMORY => Some(bytes),
            Ok(_) => {
                let message = format!("memory limit `{}` is below 6MiB", scalar.text);
                self.r
                    .error(node.span, message, "too small")
                    .help("Docker refuses memory limits under 6 MB");
                None
            }
            Err(why) => {
                let message = format!("invalid size `{}`", scalar.text);
                self.r.error(node.span, message, why).help(help);
                None
            }
        }
    }

    fn cores(&mut self, node: &Node) -> Option<f64> {
        let help = "use a fraction of CPUs from 0.01, such as 0.2 or 1.5";
        let value = node
            .scalar()
            .filter(|s| matches!(s.kind(), ScalarKind::Int | ScalarKind::Float))
            .and_then(|s| s.text.parse::<f64>().ok());
        match value {
            Some(cores) if cores.is_finite() && cores >= MIN_CORES => Some(cores),
            Some(cores) => {
                self.r
                    .error(node.span, format!("{cores} cores is too few"), "under 0.01")
                    .help(help);
                None
            }
            None => {
                self.r.wrong_type(node, "a number of CPUs such as `0.2`").help(help);
                None
            }
        }
    }

    /// A `parallel` group's children, each read as a step that may have a `delay`, then the group
    /// rules: at most one `upgrade` or `rollback` (they share the service state), and one fault
    /// of a kind per service (two would fight over the value to restore).
    pub(super) fn parallel(
        &mut self,
        node: &Node,
        key: Span,
        nested: bool,
        read_child: &mut dyn FnMut(&mut Self, &Node) -> StepDraft,
    ) -> Option<Vec<StepDraft>> {
        let items = self.r.list(node, "a list of steps")?;
        if items.is_empty() {
            self.r
                .error(key, "empty `parallel` group", "no steps")
                .help("list the steps that run at the same time: `parallel: [ ... ]`");
            return None;
        }
        let children: Vec<StepDraft> = items.iter().map(|item| read_child(self, item)).collect();
        if nested {
            // The outermost group checks all its descendants, each problem once.
            return Some(children);
        }
        let mut all = Vec::new();
        descendants(&children, &mut all);
        let mut stateful: Option<Span> = None;
        let mut faults: Vec<(&str, &str, Span)> = Vec::new();
        for draft in all {
            let Some((action, span)) = &draft.action_key else { continue };
            if action.stateful() {
                match stateful {
                    None => stateful = Some(*span),
                    Some(first) => {
                        let line = self.r.line(first);
                        self.r
                            .error(
                                *span,
                                format!("a second `{}` in one `parallel` group", action.key()),
                                "second upgrade or rollback",
                            )
                            .help(format!(
                                "the group already upgrades or rolls back on line {line}; run them one after the other"
                            ));
                    }
                }
            }
            let Some((kind, service)) = &draft.fault else { continue };
            if let Some((_, _, first)) = faults.iter().find(|(k, s, _)| k == kind && s == service) {
                let line = self.r.line(*first);
                self.r
                    .error(
                        *span,
                        format!("two `{kind}` faults on `{service}` in one `parallel` group"),
                        "second fault",
                    )
                    .help(format!(
                        "the first is on line {line}; at once they would fight over the value to restore"
                    ));
            } else {
                faults.push((kind, service, *span));
            }
        }
        Some(children)
    }

    /// A child's `delay`, or a problem when the step is not inside a `parallel` group.
    pub(super) fn delay(&mut self, node: &Node, key: Span, nested: bool) -> Option<Duration> {
        if !nested {
            self.r.error(key, "`delay` outside a `parallel` group", "not allowed here").help(
                "steps run one after the other; use a `wait` step, or put this step in `parallel`",
            );
            return None;
        }
        self.r.duration(node)
    }
}

/// Every draft under `drafts`, depth first.
fn descendants<'d>(drafts: &'d [StepDraft], out: &mut Vec<&'d StepDraft>) {
    for draft in drafts {
        out.push(draft);
        if let Some(children) = &draft.children {
            descendants(children, out);
        }
    }
}

/// `48MiB`, `512MB`, `1GiB`, `1048576` (bytes). Decimal units are powers of 1000, binary ones of
/// 1024, as Docker writes them.
pub(crate) fn parse_bytes(text: &str) -> Result<u64, &'static str> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().map_err(|_| "expected a number of bytes")?;
    let multiplier: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "KB" | "kB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        _ => return Err("unknown unit (use B, KiB, MiB, GiB, KB, MB or GB)"),
    };
    number.checked_mul(multiplier).ok_or("too large")
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::scenario::model::{Action, Scenario, StepMoment};

    const HEAD: &str = "name: t
stack:
  services:
    db: { image: p }
    billing: { image: b }
";

    fn parse(steps: &str) -> Result<Scenario, Vec<String>> {
        crate::scenario::parse(&format!("{HEAD}steps:\n{steps}"), Path::new("t.yaml"))
            .map_err(|invalid| invalid.diagnostics.into_iter().map(|d| d.message).collect())
    }

    #[test]
    fn sizes_parse_in_both_unit_families() {
        assert_eq!(parse_bytes("48MiB"), Ok(48 << 20));
        assert_eq!(parse_bytes("1GiB"), Ok(1 << 30));
        assert_eq!(parse_bytes("512MB"), Ok(512_000_000));
        assert_eq!(parse_bytes("4096"), Ok(4096));
        assert!(parse_bytes("48 megs").is_err());
        assert!(parse_bytes("MiB").is_err());
        assert!(parse_bytes("99999999999GiB").is_err());
    }

    #[test]
    fn faults_read_with_defaults() {
        let scenario = parse(
            "  - memory: { service: billing, limit: 48MiB, for: 30s }
  - cpu: { service: billing, cores: 0.2, for: 1m, target: one }
  - partition: { service: db, for: 10s, target: 2 }
",
        )
        .unwrap();
        let faults: Vec<&Fault> = scenario
            .steps
            .iter()
            .map(|s| match &s.action {
                Action::Fault(fault) => fault,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(faults[0].kind, FaultKind::Memory { limit_bytes: 48 << 20 });
        assert_eq!((faults[0].target, faults[0].duration), (Target::All, Duration::from_secs(30)));
        assert_eq!(
            (faults[1].kind.clone(), faults[1].target),
            (FaultKind::Cpu { cores: 0.2 }, Target::One)
        );
        assert_eq!(
            (faults[2].kind.clone(), faults[2].target),
            (FaultKind::Partition, Target::Count(2))
        );
        let names: Vec<_> = scenario.steps.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["memory billing", "cpu billing", "partition db"]);
    }

    #[test]
    fn fault_mistakes_are_all_reported() {
        let errors = parse(
            "  - memory: { service: billing, limit: 2MiB }
  - cpu: { service: bill, cores: 0, for: 5s }
  - partition: { service: db, for: 5s, target: some }
",
        )
        .unwrap_err();
        assert_eq!(
            errors,
            [
                "missing `for` in `memory`",
                "memory limit `2MiB` is below 6MiB",
                "unknown service `bill`",
                "0 cores is too few",
                "unknown target `some`",
            ]
        );
    }

    #[test]
    fn parallel_children_are_numbered_after_their_group_and_named_uniquely() {
        let scenario = parse(
            "  - wait: 1s
  - name: chaos
    parallel:
      - partition: { service: db, for: 5s }
      - delay: 2s
        wait: 1s
      - wait: 1s
  - wait: 1s
",
        )
        .unwrap();
        let all: Vec<(usize, &str)> =
            scenario.all_steps().iter().map(|s| (s.index, s.name.as_str())).collect();
        assert_eq!(
            all,
            [
                (0, "wait 1s"),
                (1, "chaos"),
                (2, "partition db"),
                (3, "wait 1s (2)"),
                (4, "wait 1s (3)"),
                (5, "wait 1s (4)"),
            ]
        );
        let Action::Parallel(children) = &scenario.steps[1].action else { panic!() };
        let delays: Vec<Duration> = children.iter().map(|c| c.delay).collect();
        assert_eq!(delays, [Duration::ZERO, Duration::from_secs(2), Duration::ZERO]);
    }

    #[test]
    fn a_child_may_start_at_a_moment_of_its_upgrading_sibling() {
        let scenario = parse(
            "  - parallel:
      - upgrade: { service: billing, image: b2 }
      - at: { step: upgrade billing, event: healthy }
        delay: 500ms
        pause: { service: db, for: 2s }
      - at: { step: upgrade billing }
        wait: 1s
",
        )
        .unwrap_or_else(|errors| panic!("{errors:?}"));
        let Action::Parallel(children) = &scenario.steps[0].action else { panic!() };
        let anchors: Vec<Option<(&str, StepMoment)>> =
            children.iter().map(|c| c.at.as_ref().map(|a| (a.step.as_str(), a.event))).collect();
        assert_eq!(
            anchors,
            [
                None,
                Some(("upgrade billing", StepMoment::Healthy)),
                Some(("upgrade billing", StepMoment::Started)),
            ]
        );
        assert_eq!(children[1].delay, Duration::from_millis(500));
    }

    #[test]
    fn at_mistakes_are_all_reported_with_their_place() {
        let invalid = crate::scenario::parse(
            &format!(
                "{HEAD}steps:
  - name: first
    wait: 1s
  - at: {{ step: first }}
    wait: 1s
  - parallel:
      - name: chaos
        kill: {{ service: db }}
      - at: {{ step: first }}
        wait: 1s
      - at: {{ step: chaos, event: healthy }}
        wait: 1s
      - name: me
        at: {{ step: me }}
        wait: 1s
      - at: {{ step: me, event: soon }}
        wait: 2s
      - at: {{ step: cahos }}
        wait: 3s
"
            ),
            Path::new("t.yaml"),
        )
        .unwrap_err();
        let mut got: Vec<(usize, usize, &str)> =
            invalid.diagnostics.iter().map(|d| (d.line, d.column, d.message.as_str())).collect();
        got.sort_unstable();
        assert_eq!(
            got,
            [
                (9, 5, "`at` outside a `parallel` group"),
                (14, 21, "`first` is not a step of this `parallel` group"),
                (16, 35, "`healthy` is a moment of an upgrade, and `chaos` is a `kill` step"),
                (19, 21, "`me` starts at a moment of itself"),
                (21, 32, "unknown step event `soon`"),
                (23, 21, "`cahos` is not a step of this `parallel` group"),
            ]
        );
        let cahos = invalid.diagnostics.iter().find(|d| d.message.contains("cahos")).unwrap();
        assert_eq!(cahos.help.as_deref(), Some("did you mean `chaos`?"));
    }

    #[test]
    fn group_rules_are_checked() {
        let errors = parse(
            "  - parallel:
      - memory: { service: billing, limit: 48MiB, for: 5s }
      - parallel:
          - memory: { service: billing, limit: 64MiB, for: 5s }
      - name: a
        wait: 1s
      - name: a
        wait: 2s
  - delay: 1s
    wait: 1s
  - parallel: []
",
        )
        .unwrap_err();
        assert_eq!(
            errors,
            [
                "two `memory` faults on `billing` in one `parallel` group",
                "duplicate step name `a`",
                "`delay` outside a `parallel` group",
                "empty `parallel` group",
            ]
        );
    }
}

/// A `clock-skew` offset: a sign, then numbers with units `s`, `m`, `h`, `d` (`+2h`, `-1h30m`);
/// signed seconds, not zero.
pub(crate) fn parse_offset(text: &str) -> Result<i64, &'static str> {
    let (sign, rest) = match text.trim().split_at_checked(1) {
        Some(("+", rest)) => (1, rest),
        Some(("-", rest)) => (-1, rest),
        _ => return Err("needs a sign: + (ahead) or - (behind)"),
    };
    let (mut total, mut number) = (0i64, String::new());
    for c in rest.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3_600,
            'd' => 86_400,
            _ => return Err("units are s, m, h, d"),
        };
        let value: i64 = number.parse().map_err(|_| "a number before each unit")?;
        number.clear();
        total = value.checked_mul(unit).and_then(|v| total.checked_add(v)).ok_or("too large")?;
    }
    if !number.is_empty() {
        return Err("a unit after each number (s, m, h, d)");
    }
    if total == 0 {
        return Err("a zero offset does nothing");
    }
    if total > 100 * 365 * 86_400 {
        return Err("more than 100 years");
    }
    Ok(sign * total)
}

#[cfg(test)]
mod clock_offset_tests {
    use super::parse_offset;

    #[test]
    fn offsets_parse_with_sign_and_units() {
        assert_eq!(parse_offset("+2h"), Ok(7_200));
        assert_eq!(parse_offset("-30m"), Ok(-1_800));
        assert_eq!(parse_offset("+1h30m"), Ok(5_400));
        assert_eq!(parse_offset("+1d"), Ok(86_400));
        assert!(parse_offset("2h").is_err());
        assert!(parse_offset("+2").is_err());
        assert!(parse_offset("+0s").is_err());
        assert!(parse_offset("+2x").is_err());
        assert!(parse_offset("+").is_err());
    }
}
