//! `notify` and `maintenance-notice` expectations: triggers (`on`, `resolved.after`), channels
//! and the sinks that deliver them, per-channel deadlines and recipients, content rules.

use crate::scenario::keys;
use std::time::Duration;

use indexmap::IndexMap;

use super::expect::Refs;
use super::walk::{StepKind, Walk};
use crate::scenario::model::{
    Channel, ChannelDeadline, ExpectationKind, MaintenanceNotice, Notify, Resolved, SinkKind,
    StepMoment, Trigger,
};
use crate::scenario::report::Span;
use crate::scenario::suggest;
use crate::scenario::tree::{Node, Value};

/// The most messages `at-most` may allow (a larger number is no flood limit).
const AT_MOST_LIMIT: i64 = 10_000;

impl Walk<'_> {
    pub(super) fn notify(
        &mut self,
        node: &Node,
        key: Span,
        refs: &Refs<'_>,
    ) -> Option<ExpectationKind> {
        let fields = self.r.fields(
            node,
            key,
            "`notify`",
            "a mapping with `on`, `channels` and `within`",
            &keys::NOTIFY,
        )?;
        let on = self.r.require(&fields, "on").and_then(|n| self.trigger(n, refs));
        let channels_node = self.r.require(&fields, "channels");
        let channels = channels_node.and_then(|n| self.channels(n, refs));
        let within = self.r.require(&fields, "within").and_then(|n| {
            let channels = channels.as_deref()?;
            self.deadlines(n, channels)
        });
        let spread = match fields.get("spread") {
            None => Some(None),
            Some(n) => self.r.duration(n).map(Some),
        };
        let recipients = match fields.get("recipients") {
            None => Some(IndexMap::new()),
            Some(n) => channels.as_deref().and_then(|channels| self.recipients(n, channels)),
        };
        let contains = match fields.get("contains") {
            None => Some(Vec::new()),
            Some(n) => self.words(n),
        };
        let matches = match fields.get("matches") {
            None => Some(None),
            Some(n) => self.pattern(n).map(Some),
        };
        let at_most = match fields.get("at-most") {
            None => Some(None),
            Some(n) => self
                .r
                .integer(n, "a number of messages", 1..=AT_MOST_LIMIT)
                .map(|v| Some(u32::try_from(v).expect("checked range"))),
        };
        let resolved = match fields.get("resolved") {
            None => Some(None),
            Some(n) => self.resolved(n, fields.entry("resolved").map(|e| e.key.span), refs),
        };
        Some(ExpectationKind::Notify(Box::new(Notify {
            on: on?,
            channels: channels?,
            within: within?,
            spread: spread?,
            recipients: recipients?,
            contains: contains?,
            matches: matches?,
            at_most: at_most?,
            resolved: resolved?,
        })))
    }

    pub(super) fn maintenance_notice(
        &mut self,
        node: &Node,
        key: Span,
        refs: &Refs<'_>,
    ) -> Option<ExpectationKind> {
        let fields = self.r.fields(
            node,
            key,
            "`maintenance-notice`",
            "a mapping with `before`, `channels` and `lead-time`",
            &keys::MAINTENANCE_NOTICE,
        )?;
        let before = self
            .r
            .require(&fields, "before")
            .and_then(|n| self.upgrade_ref(n, refs.steps, "maintenance-notice"));
        let channels = self.r.require(&fields, "channels").and_then(|n| self.channels(n, refs));
        let lead_time = self.r.require(&fields, "lead-time").and_then(|n| self.r.duration(n));
        let recipients = match fields.get("recipients") {
            None => Some(IndexMap::new()),
            Some(n) => channels.as_deref().and_then(|channels| self.recipients(n, channels)),
        };
        let contains = match fields.get("contains") {
            None => Some(Vec::new()),
            Some(n) => self.words(n),
        };
        Some(ExpectationKind::MaintenanceNotice(MaintenanceNotice {
            before: before?.0,
            channels: channels?,
            lead_time: lead_time?,
            recipients: recipients?,
            contains: contains?,
        }))
    }

    /// `{ step: NAME [, event: MOMENT] }`, `{ unhealthy: SERVICE }`, `{ fault: STEP }` or
    /// `{ marker: NAME }`.
    pub(super) fn trigger(&mut self, node: &Node, refs: &Refs<'_>) -> Option<Trigger> {
        let at = self.r.head(node);
        let Some(fields) = self.r.fields(
            node,
            at,
            "a trigger",
            "a trigger such as `{ step: kill billing }`",
            &keys::TRIGGER,
        ) else {
            if let Some(text) = node.scalar().map(|s| s.text.clone()) {
                self.r.last().help(format!(
                    "write `{{ step: {text} }}` (its start), add `event: ended | failed | \
                     rolled-back | restored`, or use `{{ unhealthy: SERVICE }}`, \
                     `{{ fault: STEP }}` or `{{ marker: NAME }}`"
                ));
            }
            return None;
        };
        let kinds = fields.present(&keys::TRIGGER.choices());
        let event = fields.entry("event");
        let (kind, entry) = match kinds.as_slice() {
            [] => {
                self.r
                    .error(
                        at,
                        "a trigger needs one of `step`, `unhealthy`, `fault` or `marker`",
                        "no trigger",
                    )
                    .help(
                        "for example `on: { step: kill billing }` or `on: { unhealthy: billing }`",
                    );
                return None;
            }
            [one] => *one,
            [(first, _), (second, entry), ..] => {
                self.r
                    .error(
                        entry.key.span,
                        format!("a trigger has one event, this one has `{first}` and `{second}`"),
                        "second trigger",
                    )
                    .help("split it into two expectations");
                return None;
            }
        };
        if kind != "step"
            && let Some(event) = event
        {
            self.r
                .error(
                    event.key.span,
                    format!("`event` only goes with `step`, not `{kind}`"),
                    "not here",
                )
                .help("remove `event`; it names a moment of a step");
            return None;
        }
        let value = &entry.value;
        match kind {
            "step" => {
                let step = self.step_ref(value, refs.steps);
                let moment = match event {
                    None => Some(StepMoment::Started),
                    Some(event) => self.moment(&event.value),
                };
                let (step, moment) = (step?, moment?);
                let upgrade_only = matches!(moment, StepMoment::Switched | StepMoment::Healthy);
                if let (true, Some(event), Some(Some(kind))) =
                    (upgrade_only, event, refs.steps.names.get(&step))
                    && !matches!(kind, StepKind::Upgrade(_))
                {
                    self.r
                        .error(
                            event.value.span,
                            format!(
                                "`{}` is a moment of an upgrade, and `{step}` is not one",
                                moment.name()
                            ),
                            "no such moment",
                        )
                        .help("use `started`, `ended` or `restored`, or name an upgrade step");
                    return None;
                }
                Some(Trigger::Step { step, event: moment })
            }
            "unhealthy" => {
                let service = self.r.text(value, "a service name")?;
                self.healthy_service(
                    refs.services,
                    &service,
                    value.span,
                    "an `unhealthy` trigger",
                )?;
                Some(Trigger::Unhealthy(service))
            }
            "fault" => self.step_ref(value, refs.steps).map(Trigger::Fault),
            _ => {
                let name = self.r.text(value, "a marker name")?;
                if refs.steps.names.contains_key(&name) || refs.steps.incomplete {
                    return refs.steps.names.contains_key(&name).then_some(Trigger::Marker(name));
                }
                let hint =
                    match suggest::closest(&name, refs.steps.names.keys().map(String::as_str)) {
                        Some(close) => format!("did you mean `{close}`?"),
                        None => format!("add a step `- mark: {name}` to the timeline"),
                    };
                self.r
                    .error(value.span, format!("unknown marker `{name}`"), "no step marks this")
                    .help(hint);
                None
            }
        }
    }

    pub(super) fn moment(&mut self, node: &Node) -> Option<StepMoment> {
        let text = self.r.text(node, "a step moment")?;
        let moment = StepMoment::from_name(&text);
        if moment.is_none() {
            let hint = match suggest::closest(&text, StepMoment::NAMES.iter().copied()) {
                Some(close) => format!("did you mean `{close}`?"),
                None => format!("use {}", suggest::list(StepMoment::NAMES.iter().copied())),
            };
            self.r
                .error(node.span, format!("unknown step event `{text}`"), "unknown event")
                .help(hint);
        }
        moment
    }

    /// A non-empty list of distinct channels, each delivered by a declared sink.
    pub(super) fn channels(&mut self, node: &Node, refs: &Refs<'_>) -> Option<Vec<Channel>> {
        let items = self.r.list(node, "a list of channels such as `[email, sms]`")?;
        if items.is_empty() {
            self.r.error(node.span, "`channels` is empty", "no channel").help(format!(
                "list at least one of {}",
                suggest::list(Channel::NAMES.iter().copied())
            ));
            return None;
        }
        let mut channels = Some(Vec::with_capacity(items.len()));
        for item in items {
            let channel = self.channel(item).and_then(|channel| {
                if channels.as_ref().is_some_and(|seen: &Vec<Channel>| seen.contains(&channel)) {
                    self.r
                        .error(item.span, format!("`{}` is listed twice", channel.name()), "again")
                        .help("list each channel once");
                    return None;
                }
                self.sink_for(channel, item.span, refs).map(|()| channel)
            });
            match (&mut channels, channel) {
                (Some(channels), Some(channel)) => channels.push(channel),
                _ => channels = None,
            }
        }
        channels
    }

    fn channel(&mut self, node: &Node) -> Option<Channel> {
        let text = self.r.text(node, "a channel")?;
        let channel = Channel::from_name(&text);
        if channel.is_none() {
            let hint = match suggest::closest(&text, Channel::NAMES.iter().copied()) {
                Some(close) => format!("did you mean `{close}`?"),
                None => format!("use {}", suggest::list(Channel::NAMES.iter().copied())),
            };
            self.r
                .error(node.span, format!("unknown channel `{text}`"), "unknown channel")
                .help(hint);
        }
        channel
    }

    /// A sink of the kind that delivers `channel` is declared (unknown when `sinks` had mistakes).
    fn sink_for(&mut self, channel: Channel, span: Span, refs: &Refs<'_>) -> Option<()> {
        let Some(sinks) = refs.sinks else { return Some(()) };
        let kind = channel.sink_kind();
        if sinks.values().any(|sink| sink.kind == kind) {
            return Some(());
        }
        let kind_name = sink_kind_name(kind);
        self.r
            .error(
                span,
                format!("no sink delivers `{}`", channel.name()),
                format!("no `{kind_name}` sink"),
            )
            .help(format!(
                "`{}` arrives through a `{kind_name}` sink; declare one under `sinks:`, e.g. \
                 `{}: {kind_name}`",
                channel.name(),
                sink_example_name(channel)
            ));
        None
    }

    /// `within: 90s` (every channel) or `within: { email: 90s, sms: 60s }` (every channel once).
    fn deadlines(&mut self, node: &Node, channels: &[Channel]) -> Option<Vec<ChannelDeadline>> {
        let Value::Map(entries) = &node.value else {
            let within = self.r.duration(node)?;
            return Some(
                channels.iter().map(|&channel| ChannelDeadline { channel, within }).collect(),
            );
        };
        let per_channel =
            self.per_channel(entries, channels, "within", |walk, value| walk.r.duration(value))?;
        let mut deadlines = Some(Vec::with_capacity(channels.len()));
        for &channel in channels {
            match (per_channel.get(&channel), &mut deadlines) {
                (Some(&within), Some(deadlines)) => {
                    deadlines.push(ChannelDeadline { channel, within })
                }
                (Some(_), None) => {}
                (None, _) => {
                    let at = self.r.head(node);
                    self.r
                        .error(at, format!("no deadline for `{}`", channel.name()), "incomplete")
                        .help(format!(
                            "add `{}: 90s` to `within`, or give one `within` for every channel",
                            channel.name()
                        ));
                    deadlines = None;
                }
            }
        }
        deadlines
    }

    /// `recipients: { CHANNEL: [who, ...] }`, each channel one of `channels`.
    fn recipients(
        &mut self,
        node: &Node,
        channels: &[Channel],
    ) -> Option<IndexMap<Channel, Vec<String>>> {
        let Value::Map(entries) = &node.value else {
            self.r
                .wrong_type(node, "a mapping of channels to recipients")
                .help("write `recipients: { email: [ops@acme.test], sms: [\"+15550001\"] }`");
            return None;
        };
        self.per_channel(entries, channels, "recipients", |walk, value| {
            let items = walk.r.list(value, "a list of recipients")?;
            if items.is_empty() {
                walk.r
                    .error(value.span, "no recipients listed", "empty")
                    .help("list who must be told, or remove the channel from `recipients`");
                return None;
            }
            let mut out = Some(Vec::with_capacity(items.len()));
            for item in items {
                match (walk.r.non_empty_text(item, "a recipient"), &mut out) {
                    (Some(who), Some(out)) => out.push(who),
                    _ => out = None,
                }
            }
            out
        })
    }

    /// A mapping keyed by channels that must be among `channels`, each value read by `read`.
    fn per_channel<T>(
        &mut self,
        entries: &[crate::scenario::tree::Entry],
        channels: &[Channel],
        what: &str,
        mut read: impl FnMut(&mut Self, &Node) -> Option<T>,
    ) -> Option<IndexMap<Channel, T>> {
        let mut out = Some(IndexMap::with_capacity(entries.len()));
        for entry in entries {
            let channel = self.channel(&entry.key).and_then(|channel| {
                if channels.contains(&channel) {
                    return Some(channel);
                }
                self.r
                    .error(
                        entry.key.span,
                        format!("`{}` in `{what}` is not one of `channels`", channel.name()),
                        "not listed",
                    )
                    .help(format!("add `{}` to `channels`, or remove it here", channel.name()));
                None
            });
            let value = read(self, &entry.value);
            match (&mut out, channel, value) {
                (Some(out), Some(channel), Some(value)) => {
                    out.insert(channel, value);
                }
                _ => out = None,
            }
        }
        out
    }

    /// `contains: word` or `contains: [word, ...]`.
    fn words(&mut self, node: &Node) -> Option<Vec<String>> {
        if node.scalar().is_some() {
            return self.r.non_empty_text(node, "a word or a list of words").map(|w| vec![w]);
        }
        let items = self.r.list(node, "a list of words such as `[billing, outage]`")?;
        let mut words = Some(Vec::with_capacity(items.len()));
        for item in items {
            match (self.r.non_empty_text(item, "a word"), &mut words) {
                (Some(word), Some(words)) => words.push(word),
                _ => words = None,
            }
        }
        words
    }

    /// A regular expression that compiles.
    fn pattern(&mut self, node: &Node) -> Option<String> {
        let pattern = self.r.non_empty_text(node, "a regular expression")?;
        match regex::Regex::new(&pattern) {
            Ok(_) => Some(pattern),
            Err(error) => {
                let why = error.to_string();
                let why = why.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or_default();
                let why = why.trim().trim_start_matches("error: ").to_owned();
                self.r
                    .error(node.span, "invalid regular expression", why)
                    .help("`matches` uses the syntax of Rust's `regex` crate; `(?i)` ignores case");
                None
            }
        }
    }

    fn resolved(
        &mut self,
        node: &Node,
        key: Option<Span>,
        refs: &Refs<'_>,
    ) -> Option<Option<Resolved>> {
        let at = key.unwrap_or_else(|| self.r.head(node));
        let fields = self.r.fields(
            node,
            at,
            "`resolved`",
            "a mapping with `after` and `within`",
            &keys::RESOLVED,
        )?;
        let after = self.r.require(&fields, "after").and_then(|n| self.trigger(n, refs));
        let within: Option<Duration> =
            self.r.require(&fields, "within").and_then(|n| self.r.duration(n));
        Some(Some(Resolved { after: after?, within: within? }))
    }
}

/// How a sink kind is written in a scenario.
fn sink_kind_name(kind: SinkKind) -> &'static str {
    SinkKind::NAMES
        .iter()
        .copied()
        .find(|name| SinkKind::from_name(name) == Some(kind))
        .expect("every kind has a name")
}

/// A sink name for the "declare one" hint.
fn sink_example_name(channel: Channel) -> &'static str {
    match channel {
        Channel::Email => "email",
        Channel::Sms | Channel::Voice => "twilio",
        Channel::Fax => "fax",
        Channel::StatusPage => "status",
        Channel::Chat => "chat",
        Channel::Page => "pager",
        Channel::Webhook => "hook",
    }
}

/// `notify email, sms on "kill billing"`.
pub(super) fn notify_name(notify: &Notify) -> String {
    format!("notify {} on {}", channel_list(&notify.channels), notify.on.describe())
}

/// `maintenance-notice sms, chat before "upgrade billing"`.
pub(super) fn maintenance_name(notice: &MaintenanceNotice) -> String {
    format!("maintenance-notice {} before \"{}\"", channel_list(&notice.channels), notice.before)
}

fn channel_list(channels: &[Channel]) -> String {
    channels.iter().map(|c| c.name()).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use crate::scenario::model::{Channel, Expectation, ExpectationKind, StepMoment, Trigger};

    fn every_key() -> crate::scenario::Scenario {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/scenarios/valid/every-notify-key.yaml");
        crate::scenario::load(&path).expect("the example is valid")
    }

    #[test]
    fn reads_every_key_and_names_the_checks() {
        let scenario = every_key();
        let names: Vec<&str> = scenario.expect.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "notify email, sms, status-page on \"kill billing\"",
                "paged when billing turns unhealthy",
                "notify email on \"upgrade billing\" failed",
                "notify chat on \"upgrade billing\" rolled-back",
                "notify chat on \"start billing\" ended",
                "notify page on fault \"partition db\"",
                "maintenance-notice sms, chat, status-page before \"upgrade billing\"",
            ]
        );
        let ExpectationKind::Notify(first) = &scenario.expect[0].kind else { panic!() };
        assert_eq!(first.deadline(Channel::Sms), Some(Duration::from_secs(90)));
        assert_eq!(first.recipients[&Channel::Sms], ["+15550001", "+15550002"]);
        assert_eq!(first.contains, ["billing", "outage"]);
        assert_eq!((first.spread, first.at_most), (Some(Duration::from_secs(30)), Some(3)));
        let resolved = first.resolved.as_ref().unwrap();
        assert_eq!(
            resolved.after,
            Trigger::Step { step: "kill billing".into(), event: StepMoment::Restored }
        );
        let ExpectationKind::Notify(paged) = &scenario.expect[1].kind else { panic!() };
        assert_eq!(paged.on, Trigger::Unhealthy("billing".into()));
        assert_eq!(paged.deadline(Channel::Fax), Some(Duration::from_secs(300)));
        assert_eq!(paged.contains, ["billing"]);
        let ExpectationKind::MaintenanceNotice(notice) = &scenario.expect[6].kind else { panic!() };
        assert_eq!(notice.recipients[&Channel::Sms], ["+15550001"]);
        assert_eq!(notice.contains, ["billing"]);
    }

    #[test]
    fn maintenance_notice_recipients_name_its_channels() {
        let source = "name: t
sinks: { email: smtp, sms: twilio }
stack:
  services:
    app: { image: a, ports: [80], health: { http: { port: 80, path: / } } }
steps:
  - upgrade: { service: app, image: a2 }
expect:
  - maintenance-notice:
      before: upgrade app
      channels: [email]
      lead-time: 1m
      recipients: { sms: [\"+1\"] }
      contains: { billing: true }
";
        let invalid = crate::scenario::parse(source, Path::new("t.yaml")).unwrap_err();
        let messages: Vec<_> = invalid.diagnostics.iter().map(|d| d.message.as_str()).collect();
        assert_eq!(messages.len(), 2, "{messages:?}");
        assert_eq!(messages[0], "`sms` in `recipients` is not one of `channels`");
    }

    /// `firedrill report` re-reads expectations from the journal's `scenario-loaded` event.
    #[test]
    fn expectations_survive_the_journal() {
        let expect = every_key().expect;
        let json = serde_json::to_value(&expect).unwrap();
        let back: Vec<Expectation> = serde_json::from_value(json).unwrap();
        assert_eq!(back, expect);
    }

    #[test]
    fn a_trigger_has_one_event() {
        let source = "name: t
sinks: { email: smtp }
stack:
  services:
    db: { image: p, ports: [5432], health: { tcp: { port: 5432, connect-is-enough: true } } }
    app: { image: a }
steps:
  - kill: { service: db }
expect:
  - notify: { on: { step: kill db, unhealthy: db }, channels: [email], within: 1m }
  - notify: { on: { unhealthy: db, event: failed }, channels: [email], within: 1m }
  - notify: { on: { unhealthy: app }, channels: [email, email], within: 1m }
  - notify: { on: {}, channels: [], within: 1m }
";
        let invalid = crate::scenario::parse(source, Path::new("t.yaml")).unwrap_err();
        let messages: Vec<_> = invalid.diagnostics.iter().map(|d| d.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "a trigger has one event, this one has `step` and `unhealthy`",
                "`event` only goes with `step`, not `unhealthy`",
                "`app` has no health check",
                "`email` is listed twice",
                "a trigger needs one of `step`, `unhealthy`, `fault` or `marker`",
                "`channels` is empty",
            ]
        );
    }
}
