//! The run's notification sinks: started at bring-up (after the network, before any service),
//! their events mapped into the journal, chaos switched by `sink-outage` steps, shut down at
//! teardown.
//!
//! Each scenario sink listens twice: on `127.0.0.1:0` for the harness and tests on the host, and
//! on `GATEWAY:0` (the run network's gateway) for the containers, which reach it as
//! `host.docker.internal:PORT` through `{{ sinks.NAME.* }}`. Limits are the sinks' defaults
//! (`sinks::Limits::default()`: 1 MiB per message, 10 000 messages per sink and run); timeouts
//! are `sinks::Timeouts::default()` with what the scenario's `timeouts` sets.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use indexmap::IndexMap;

use super::EngineError;
use crate::journal::{EventKind, Journal};
use crate::scenario::model::{self, OutageMode, Scenario};
use crate::sinks::{self, Chaos, ChaosMode, Sink, SinkConfig, SinkEvent, SinkKind};

/// The sinks of one run. Empty until [`RunSinks::start`]; shut down by [`RunSinks::shutdown`].
#[derive(Default)]
pub struct RunSinks {
    running: Mutex<IndexMap<String, Running>>,
}

struct Running {
    sink: Sink,
    /// The outage in force, to end it (and say so) at teardown.
    outage: Option<Outage>,
}

/// An outage of one sink, as a `sink-outage` step asks for it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Outage {
    /// How it fails.
    pub mode: OutageMode,
    /// Share of requests hit.
    pub probability: f64,
    /// Only this channel of a `twilio` sink; `None`: every request of the sink.
    pub channel: Option<Channel>,
}

/// The channels of a `twilio` sink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// Messages.
    Sms,
    /// Calls.
    Voice,
}

impl Outage {
    /// From a `sink-outage` step.
    pub fn of(step: &model::SinkOutage) -> Outage {
        let channel = match step.channel.as_deref() {
            Some("sms") => Some(Channel::Sms),
            Some("voice") => Some(Channel::Voice),
            Some(other) => unreachable!("validation allows sms and voice, not {other}"),
            None => None,
        };
        Outage { mode: step.mode, probability: step.probability, channel }
    }

    /// As journaled in `sink-chaos`: `status 500`, `hang`, `status 500 (sms only)`.
    fn describe(&self) -> String {
        match self.channel {
            None => self.mode.describe(),
            Some(Channel::Sms) => format!("{} (sms only)", self.mode.describe()),
            Some(Channel::Voice) => format!("{} (voice only)", self.mode.describe()),
        }
    }
}

fn resource(channel: Channel) -> sinks::Resource {
    match channel {
        Channel::Sms => sinks::Resource::Messages,
        Channel::Voice => sinks::Resource::Calls,
    }
}

impl RunSinks {
    /// Start every sink of `scenario` on `127.0.0.1:0` and `gateway:0`, journaling
    /// `sink-started`; returns each sink's port on the gateway (for `{{ sinks.NAME.port }}`).
    /// A sink that cannot listen fails bring-up (the sinks started so far stop at teardown).
    pub async fn start(
        &self,
        scenario: &Scenario,
        gateway: Option<IpAddr>,
        journal: &Journal,
        seed: u64,
    ) -> Result<HashMap<String, u16>, EngineError> {
        let mut ports = HashMap::new();
        if scenario.sinks.is_empty() {
            return Ok(ports);
        }
        let Some(gateway) = gateway else {
            return Err(EngineError::Sink {
                sink: scenario.sinks.keys().next().cloned().unwrap_or_default(),
                reason: "the backend reported no address where the run's services reach the harness, so they \
                         could not reach the sink"
                    .into(),
            });
        };
        for (index, sink) in scenario.sinks.values().enumerate() {
            let config = SinkConfig {
                name: sink.name.clone(),
                kind: kind(sink.kind),
                listen: vec![
                    SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
                    SocketAddr::new(gateway, 0),
                ],
                limits: sinks::Limits::default(),
                timeouts: timeouts(&sink.timeouts),
                seed: sink_seed(seed, index),
            };
            let clock_journal = journal.clone();
            let clock: sinks::SinkClock = Arc::new(move || clock_journal.offset());
            let event_journal = journal.clone();
            let events: sinks::SinkEvents = Arc::new(move |event| {
                event_journal.record(journal_event(event));
            });
            let started = Sink::start(config, clock, events).await.map_err(|error| {
                EngineError::Sink { sink: sink.name.clone(), reason: error.to_string() }
            })?;
            let addrs = started.local_addrs().to_vec();
            journal.record(EventKind::SinkStarted {
                sink: sink.name.clone(),
                kind: kind(sink.kind).as_str().to_owned(),
                addrs: addrs.iter().map(SocketAddr::to_string).collect(),
            });
            ports.insert(sink.name.clone(), addrs[1].port());
            self.lock().insert(sink.name.clone(), Running { sink: started, outage: None });
        }
        Ok(ports)
    }

    /// The harness-side (127.0.0.1) address of a running sink (tests, gameday responders).
    pub fn local_addr(&self, name: &str) -> Option<SocketAddr> {
        self.lock().get(name).map(|running| running.sink.local_addrs()[0])
    }

    /// Start (`Some`) or end (`None`) an outage of sink `name`, journaling `sink-chaos`. False when
    /// no such sink runs. Ending an outage that is not in force records nothing.
    pub fn set_outage(&self, name: &str, outage: Option<Outage>, journal: &Journal) -> bool {
        let mut running = self.lock();
        let Some(one) = running.get_mut(name) else { return false };
        match outage {
            Some(outage) => {
                let (mode, probability) = (outage.mode, outage.probability);
                let only = outage.channel.map(resource);
                one.sink.set_chaos(Some(Chaos { mode: chaos_mode(mode), probability, only }));
                journal.record(EventKind::SinkChaos {
                    sink: name.to_owned(),
                    mode: outage.describe(),
                    probability,
                    on: true,
                });
                one.outage = Some(outage);
            }
            None => {
                one.sink.set_chaos(None);
                if let Some(outage) = one.outage.take() {
                    journal.record(EventKind::SinkChaos {
                        sink: name.to_owned(),
                        mode: outage.describe(),
                        probability: outage.probability,
                        on: false,
                    });
                }
            }
        }
        true
    }

    /// End outages still in force (journaled), stop listening and end open connections.
    pub async fn shutdown(&self, journal: &Journal) {
        let names: Vec<String> = self.lock().keys().cloned().collect();
        for name in &names {
            self.set_outage(name, None, journal);
        }
        let running: Vec<(String, Running)> = self.lock().drain(..).collect();
        for (name, running) in running {
            running.sink.shutdown().await;
            // Nothing arrives after this: `notify` judges a missing message against it.
            journal.record(EventKind::SinkStopped { sink: name });
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, IndexMap<String, Running>> {
        // A panic while holding this lock leaves plain data behind; keep using it.
        self.running.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The sinks module's kind for a scenario's.
fn kind(kind: model::SinkKind) -> SinkKind {
    match kind {
        model::SinkKind::Smtp => SinkKind::Smtp,
        model::SinkKind::Twilio => SinkKind::Twilio,
        model::SinkKind::Sinch => SinkKind::Sinch,
        model::SinkKind::Statuspage => SinkKind::Statuspage,
        model::SinkKind::Slack => SinkKind::Slack,
        model::SinkKind::Pagerduty => SinkKind::Pagerduty,
        model::SinkKind::Webhook => SinkKind::Webhook,
    }
}

/// The sink's default timeouts with the scenario's on top.
fn timeouts(set: &model::SinkTimeouts) -> sinks::Timeouts {
    let default = sinks::Timeouts::default();
    sinks::Timeouts {
        greeting: set.greeting.unwrap_or(default.greeting),
        mail: set.mail.unwrap_or(default.mail),
        rcpt: set.rcpt.unwrap_or(default.rcpt),
        data_init: set.data_init.unwrap_or(default.data_init),
        data_block: set.data_block.unwrap_or(default.data_block),
        data_termination: set.data_termination.unwrap_or(default.data_termination),
        server: set.server.unwrap_or(default.server),
        idle: set.idle.unwrap_or(default.idle),
        header_read: set.header_read.unwrap_or(default.header_read),
        body_read: set.body_read.unwrap_or(default.body_read),
    }
}

fn chaos_mode(mode: OutageMode) -> ChaosMode {
    match mode {
        OutageMode::Status(status) => ChaosMode::Status(status),
        OutageMode::Hang => ChaosMode::Hang,
    }
}

/// A seed per sink, so two sinks of one run do not fail the same requests in lockstep.
fn sink_seed(seed: u64, index: usize) -> u64 {
    seed ^ (index as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// The channel a notification arrived on: `email`, `sms`, `voice`, `fax`, `status-page`, `chat`,
/// `page` or `webhook`.
pub fn channel(kind: SinkKind, detail: &serde_json::Value) -> &'static str {
    match kind {
        SinkKind::Smtp => "email",
        SinkKind::Twilio if detail.get("resource").and_then(|r| r.as_str()) == Some("calls") => {
            "voice"
        }
        SinkKind::Twilio => "sms",
        SinkKind::Sinch => "fax",
        SinkKind::Statuspage => "status-page",
        SinkKind::Slack => "chat",
        SinkKind::Pagerduty => "page",
        SinkKind::Webhook => "webhook",
    }
}

/// A sink's event as a journal event.
fn journal_event(event: SinkEvent) -> EventKind {
    match event {
        SinkEvent::Received(notification) => EventKind::NotificationReceived {
            channel: channel(notification.kind, &notification.channel_detail).to_owned(),
            sink: notification.sink,
            received_us: notification.received.as_micros() as u64,
            from: notification.from,
            recipients: notification.recipients,
            subject: notification.subject,
            body: notification.body,
            detail: notification.channel_detail,
        },
        SinkEvent::Rejected { sink, reason, detail } => EventKind::SinkRejected {
            sink,
            reason: serde_json::to_value(reason)
                .ok()
                .and_then(|value| value.as_str().map(str::to_owned))
                .unwrap_or_default(),
            detail,
        },
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;

    use super::*;
    use crate::sinks::{Notification, RejectReason};

    fn notification(kind: SinkKind, detail: serde_json::Value) -> Notification {
        Notification {
            sink: "s".into(),
            kind,
            received: Duration::from_micros(1_500_000),
            from: Some("+15550000".into()),
            recipients: vec!["+15550001".into()],
            subject: None,
            body: "OUTAGE: billing is down".into(),
            channel_detail: detail,
        }
    }

    #[test]
    fn channels_follow_the_kind_and_twilio_resource() {
        let cases = [
            (SinkKind::Smtp, json!(null), "email"),
            (SinkKind::Twilio, json!({"resource": "messages"}), "sms"),
            (SinkKind::Twilio, json!({"resource": "calls"}), "voice"),
            (SinkKind::Sinch, json!(null), "fax"),
            (SinkKind::Statuspage, json!({"status": "investigating"}), "status-page"),
            (SinkKind::Slack, json!(null), "chat"),
            (SinkKind::Pagerduty, json!({"event_action": "trigger"}), "page"),
            (SinkKind::Webhook, json!({"json": {}}), "webhook"),
        ];
        for (kind, detail, expected) in cases {
            assert_eq!(channel(kind, &detail), expected, "{kind}");
        }
    }

    #[test]
    fn a_notification_keeps_the_sink_receive_time_and_everything_it_carried() {
        let event = journal_event(SinkEvent::Received(notification(
            SinkKind::Twilio,
            json!({"resource": "calls"}),
        )));
        assert_eq!(
            event,
            EventKind::NotificationReceived {
                sink: "s".into(),
                channel: "voice".into(),
                received_us: 1_500_000,
                from: Some("+15550000".into()),
                recipients: vec!["+15550001".into()],
                subject: None,
                body: "OUTAGE: billing is down".into(),
                detail: json!({"resource": "calls"}),
            }
        );
    }

    #[test]
    fn rejections_name_their_reason_in_kebab_case() {
        let event = journal_event(SinkEvent::Rejected {
            sink: "sms".into(),
            reason: RejectReason::InvalidPayload,
            detail: "missing To".into(),
        });
        assert_eq!(
            event,
            EventKind::SinkRejected {
                sink: "sms".into(),
                reason: "invalid-payload".into(),
                detail: "missing To".into(),
            }
        );
    }

    #[test]
    fn evictions_and_timeouts_are_journaled_as_rejections_with_their_reason() {
        for (reason, text) in
            [(RejectReason::Evicted, "evicted"), (RejectReason::Timeout, "timeout")]
        {
            let event = journal_event(SinkEvent::Rejected {
                sink: "email".into(),
                reason,
                detail: "127.0.0.1:5".into(),
            });
            assert!(
                matches!(&event, EventKind::SinkRejected { reason, .. } if reason == text),
                "{event:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_scenario_timeout_reaches_the_running_sink_and_its_journal() {
        use tokio::io::AsyncReadExt;

        let clock = Arc::new(crate::clock::SystemClock::start());
        let journal = Journal::in_memory(clock);
        let scenario = crate::scenario::parse(
            "name: t\nsinks: { email: { kind: smtp, timeouts: { greeting: 50ms } } }\n\
             stack:\n  services:\n    a: { image: a }\n",
            std::path::Path::new("t.yaml"),
        )
        .unwrap();
        let sinks = RunSinks::default();
        sinks.start(&scenario, Some(IpAddr::V4(Ipv4Addr::LOCALHOST)), &journal, 1).await.unwrap();
        let addr = sinks.local_addr("email").unwrap();
        let mut silent = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut said = String::new();
        // The sink greets, times the silence out, answers 421 and closes (after journaling).
        silent.read_to_string(&mut said).await.unwrap();
        assert!(said.starts_with("220 ") && said.contains("\r\n421 4.4.2"), "{said}");
        sinks.shutdown(&journal).await;
        let rejected: Vec<EventKind> = journal
            .snapshot()
            .into_iter()
            .map(|e| e.kind)
            .filter(|kind| matches!(kind, EventKind::SinkRejected { .. }))
            .collect();
        assert!(
            matches!(&rejected[..], [EventKind::SinkRejected { sink, reason, detail }]
                if sink == "email" && reason == "timeout" && detail.contains("`greeting` timeout, 50ms")),
            "{rejected:?}"
        );
    }

    #[test]
    fn scenario_timeouts_override_only_what_they_set() {
        let set = model::SinkTimeouts {
            server: Some(Duration::from_secs(5)),
            idle: Some(Duration::from_secs(7)),
            ..model::SinkTimeouts::default()
        };
        let got = timeouts(&set);
        let default = sinks::Timeouts::default();
        assert_eq!(
            got,
            sinks::Timeouts {
                server: Duration::from_secs(5),
                idle: Duration::from_secs(7),
                ..default
            }
        );
        assert_eq!(timeouts(&model::SinkTimeouts::default()), default);
    }

    #[test]
    fn every_scenario_kind_maps_to_the_same_sink_kind() {
        for name in model::SinkKind::NAMES {
            let kind = kind(model::SinkKind::from_name(name).unwrap());
            assert_eq!(kind.as_str(), *name);
        }
    }

    #[test]
    fn sink_seeds_differ_per_sink_and_follow_the_run_seed() {
        assert_ne!(sink_seed(7, 0), sink_seed(7, 1));
        assert_eq!(sink_seed(7, 1), sink_seed(7, 1));
        assert_ne!(sink_seed(7, 0), sink_seed(8, 0));
    }

    #[tokio::test]
    async fn outages_are_journaled_on_and_off_and_ended_at_shutdown() {
        let clock = Arc::new(crate::clock::SystemClock::start());
        let journal = Journal::in_memory(clock);
        let scenario = crate::scenario::parse(
            "name: t\nsinks: { sms: twilio }\nstack:\n  services:\n    a: { image: a }\n",
            std::path::Path::new("t.yaml"),
        )
        .unwrap();
        let sinks = RunSinks::default();
        let ports = sinks
            .start(&scenario, Some(IpAddr::V4(Ipv4Addr::LOCALHOST)), &journal, 1)
            .await
            .unwrap();
        assert!(ports["sms"] > 0);
        assert!(sinks.local_addr("sms").is_some_and(|addr| addr.ip().is_loopback()));
        assert!(!sinks.set_outage("nope", None, &journal));
        let outage = Outage { mode: OutageMode::Status(500), probability: 1.0, channel: None };
        assert!(sinks.set_outage("sms", Some(outage), &journal));
        sinks.shutdown(&journal).await;
        assert!(sinks.local_addr("sms").is_none());
        let kinds: Vec<EventKind> = journal.snapshot().into_iter().map(|e| e.kind).collect();
        assert!(matches!(&kinds[0], EventKind::SinkStarted { sink, kind, addrs }
            if sink == "sms" && kind == "twilio" && addrs.len() == 2));
        assert_eq!(
            &kinds[1..],
            [
                EventKind::SinkChaos {
                    sink: "sms".into(),
                    mode: "status 500".into(),
                    probability: 1.0,
                    on: true
                },
                EventKind::SinkChaos {
                    sink: "sms".into(),
                    mode: "status 500".into(),
                    probability: 1.0,
                    on: false
                },
                EventKind::SinkStopped { sink: "sms".into() },
            ]
        );
    }
}
