//! What the console shows, as a pure function of the journal events it was told about: the
//! timeline (the progress lines), the open prompts with their deadlines, and what each sink
//! received. Every change is also a [`Frame`]: one Server-Sent Event the page applies live.

use indexmap::IndexMap;
use serde::Serialize;
use serde_json::json;

use super::super::progress::{Lines, notification_text};
use crate::journal::{Event, EventKind};

/// One Server-Sent Event: its name and its JSON data.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Frame {
    /// `run`, `timeline`, `prompts`, `sink`.
    pub(super) name: &'static str,
    /// The data, one JSON document.
    pub(super) data: serde_json::Value,
}

impl Frame {
    /// The event as it goes on the wire: `id` (its position, for `Last-Event-ID`), `event`, and
    /// the data on `data:` lines (JSON never holds a raw newline, but a line per line is the
    /// format's rule, so it is followed whatever the text).
    pub(super) fn sse(&self, id: usize) -> String {
        let data = self.data.to_string();
        let mut out = format!("id: {id}\nevent: {}\n", self.name);
        for line in data.split('\n') {
            out.push_str("data: ");
            out.push_str(line.strip_suffix('\r').unwrap_or(line));
            out.push('\n');
        }
        out.push('\n');
        out
    }
}

/// A line of the timeline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(super) struct Item {
    /// Seconds into the run, as the progress shows them (`12.3s`).
    pub(super) at: String,
    /// What happened.
    pub(super) text: String,
    /// The journal event's name (`human-prompted`, …), for styling.
    pub(super) event: String,
}

/// An open prompt, with its deadline in wall time for the countdown.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(super) struct Prompt {
    pub(super) step: String,
    pub(super) role: String,
    pub(super) prompt: String,
    pub(super) runbook: Option<String>,
    pub(super) done: String,
    /// Milliseconds since the Unix epoch when the step stops waiting.
    pub(super) deadline_ms: i64,
    /// Whether someone acknowledged already (an effect step stays open until its effect).
    pub(super) acknowledged: bool,
    /// The service "we decided to roll back" rolls back, when offered.
    pub(super) roll_back: Option<String>,
}

/// What one sink received.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(super) struct Receipt {
    pub(super) at: String,
    pub(super) channel: String,
    pub(super) to: String,
    pub(super) text: String,
}

/// A sink of the run and what it received so far.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub(super) struct SinkView {
    /// Its protocol (`smtp`, `twilio`, …).
    pub(super) kind: String,
    pub(super) receipts: Vec<Receipt>,
}

/// The console's state for one run at a time (a new `run-started` starts over).
#[derive(Debug, Default)]
pub(super) struct View {
    /// Step counts per scenario name, for "step 2/5".
    steps: IndexMap<String, usize>,
    lines: Option<Lines>,
    pub(super) run: Option<(String, String)>,
    pub(super) timeline: Vec<Item>,
    pub(super) prompts: Vec<Prompt>,
    pub(super) sinks: IndexMap<String, SinkView>,
}

impl View {
    /// A view for runs of scenarios with these step counts (name → steps).
    pub(super) fn new(steps: IndexMap<String, usize>) -> Self {
        View { steps, ..View::default() }
    }

    /// Take in one journal event; the frames that tell the page.
    pub(super) fn apply(&mut self, event: &Event) -> Vec<Frame> {
        let mut frames = Vec::new();
        match &event.kind {
            EventKind::RunStarted { run_id, scenario, .. } => {
                let steps = self.steps.get(scenario).copied().unwrap_or_default();
                self.lines = Some(Lines { color: false, steps });
                self.run = Some((run_id.clone(), scenario.clone()));
                self.timeline.clear();
                self.prompts.clear();
                self.sinks.clear();
                frames.push(Frame {
                    name: "run",
                    data: json!({ "run-id": run_id, "scenario": scenario }),
                });
            }
            EventKind::HumanPrompted {
                step,
                role,
                prompt,
                runbook,
                deadline_us,
                done,
                roll_back,
                ..
            } => {
                let deadline_ms = event.wall.as_millisecond() + (*deadline_us / 1_000) as i64;
                self.prompts.push(Prompt {
                    step: step.clone(),
                    role: role.clone(),
                    prompt: prompt.clone(),
                    runbook: runbook.clone(),
                    done: done.clone(),
                    deadline_ms,
                    acknowledged: false,
                    roll_back: roll_back.clone(),
                });
                frames.push(self.prompts_frame());
            }
            EventKind::HumanAcknowledged { step, .. } => {
                if let Some(prompt) = self.prompts.iter_mut().find(|p| &p.step == step) {
                    prompt.acknowledged = true;
                    frames.push(self.prompts_frame());
                }
            }
            EventKind::HumanDecided { step, .. }
            | EventKind::HumanEffect { step, .. }
            | EventKind::HumanExpired { step, .. }
            | EventKind::StepEnded { step, .. } => {
                let before = self.prompts.len();
                self.prompts.retain(|p| &p.step != step);
                if self.prompts.len() != before {
                    frames.push(self.prompts_frame());
                }
            }
            EventKind::SinkStarted { sink, kind, .. } => {
                self.sinks.insert(sink.clone(), SinkView { kind: kind.clone(), receipts: vec![] });
                frames.push(Frame { name: "sink", data: json!({ "sink": sink, "kind": kind }) });
            }
            EventKind::NotificationReceived {
                sink,
                channel,
                received_us,
                recipients,
                subject,
                body,
                ..
            } => {
                let receipt = Receipt {
                    at: seconds(*received_us),
                    channel: channel.clone(),
                    to: recipients.join(", "),
                    text: notification_text(subject.as_deref(), body),
                };
                let view = self.sinks.entry(sink.clone()).or_default();
                view.receipts.push(receipt.clone());
                frames.push(Frame {
                    name: "sink",
                    data: json!({ "sink": sink, "kind": view.kind, "receipt": receipt }),
                });
            }
            _ => {}
        }
        if let Some(item) = self.item(event) {
            frames.push(Frame {
                name: "timeline",
                data: serde_json::to_value(&item).expect("an item serializes"),
            });
            self.timeline.push(item);
        }
        frames
    }

    fn prompts_frame(&self) -> Frame {
        Frame {
            name: "prompts",
            data: serde_json::to_value(&self.prompts).expect("prompts serialize"),
        }
    }

    /// The event's timeline line: the progress line without its time column.
    fn item(&self, event: &Event) -> Option<Item> {
        let lines = self.lines.as_ref()?;
        let line = lines.line(event)?;
        // The progress line starts with its time column (`{:>7.1}s`); the item keeps it apart.
        let (at, text) = line.trim_start().split_once(' ')?;
        Some(Item {
            at: at.to_owned(),
            text: text.trim().to_owned(),
            event: event_name(&event.kind),
        })
    }
}

/// `12.3s`.
fn seconds(us: u64) -> String {
    format!("{:.1}s", us as f64 / 1e6)
}

/// The journal's name of an event (`human-prompted`).
fn event_name(kind: &EventKind) -> String {
    let value = serde_json::to_value(kind).expect("events serialize");
    value["event"].as_str().unwrap_or_default().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(seq: u64, offset_us: u64, kind: EventKind) -> Event {
        let wall = jiff::Timestamp::from_second(1_800_000_000).unwrap();
        let wall = wall.checked_add(jiff::SignedDuration::from_micros(offset_us as i64)).unwrap();
        Event { seq, offset_us, wall, kind }
    }

    fn started() -> EventKind {
        EventKind::RunStarted {
            run_id: "r1".into(),
            scenario: "gameday".into(),
            file: "g.yaml".into(),
            format_version: 1,
            firedrill_version: "0".into(),
            seed: None,
        }
    }

    fn prompted(step: &str, roll_back: Option<&str>) -> EventKind {
        EventKind::HumanPrompted {
            step: step.into(),
            role: "on-call".into(),
            prompt: "Ack <now>".into(),
            runbook: None,
            deadline_us: 20_000_000,
            done: "acknowledge".into(),
            by_acknowledgement: true,
            roll_back: roll_back.map(str::to_owned),
        }
    }

    #[test]
    fn a_frame_is_one_sse_event_with_id_name_and_data_lines() {
        let frame = Frame { name: "prompts", data: json!([{ "step": "a\nb" }]) };
        assert_eq!(
            frame.sse(7),
            "id: 7\nevent: prompts\ndata: [{\"step\":\"a\\nb\"}]\n\n",
            "a newline in a value stays escaped inside the JSON"
        );
        let text = Frame { name: "timeline", data: json!("x") };
        assert!(text.sse(0).ends_with("data: \"x\"\n\n"));
    }

    #[test]
    fn prompts_open_on_their_prompt_and_close_when_answered_or_over() {
        let mut view = View::new(IndexMap::from([("gameday".to_owned(), 3)]));
        let frames = view.apply(&event(0, 0, started()));
        assert_eq!(frames[0].name, "run");
        let frames = view.apply(&event(1, 2_000_000, prompted("page", Some("billing"))));
        let prompts = frames.iter().find(|f| f.name == "prompts").unwrap();
        assert_eq!(prompts.data[0]["step"], "page");
        assert_eq!(prompts.data[0]["roll-back"], "billing");
        // The deadline is the prompt's wall time plus its deadline, in epoch ms.
        assert_eq!(prompts.data[0]["deadline-ms"], 1_800_000_000_000i64 + 2_000 + 20_000);
        let timeline = frames.iter().find(|f| f.name == "timeline").unwrap();
        assert_eq!(timeline.data["at"], "2.0s");
        assert!(timeline.data["text"].as_str().unwrap().contains("PROMPT on-call"));
        view.apply(&event(2, 2_500_000, prompted("post", None)));
        assert_eq!(view.prompts.len(), 2);
        let frames = view.apply(&event(
            3,
            3_000_000,
            EventKind::HumanAcknowledged {
                step: "post".into(),
                role: "on-call".into(),
                by: "console".into(),
            },
        ));
        assert_eq!(frames[0].data[1]["acknowledged"], true);
        let frames = view.apply(&event(
            4,
            4_000_000,
            EventKind::HumanDecided {
                step: "page".into(),
                role: "on-call".into(),
                by: "console".into(),
                decision: "roll-back".into(),
                service: "billing".into(),
            },
        ));
        assert_eq!(frames[0].data.as_array().unwrap().len(), 1, "`page` is answered");
        assert!(
            frames[1].data["text"].as_str().unwrap().contains("decided to roll back billing"),
            "{frames:?}"
        );
        view.apply(&event(
            5,
            5_000_000,
            EventKind::HumanExpired { step: "post".into(), role: "on-call".into() },
        ));
        assert!(view.prompts.is_empty());
    }

    #[test]
    fn sinks_list_what_they_received_and_traffic_stays_off_the_timeline() {
        let mut view = View::new(IndexMap::new());
        view.apply(&event(0, 0, started()));
        view.apply(&event(
            1,
            10,
            EventKind::SinkStarted {
                sink: "status".into(),
                kind: "statuspage".into(),
                addrs: vec!["127.0.0.1:1".into()],
            },
        ));
        let frames = view.apply(&event(
            2,
            3_000_000,
            EventKind::NotificationReceived {
                sink: "status".into(),
                channel: "status-page".into(),
                received_us: 2_900_000,
                from: None,
                recipients: vec!["page1".into()],
                subject: Some("Billing <down>".into()),
                body: "investigating".into(),
                detail: json!({}),
            },
        ));
        assert_eq!(frames[0].name, "sink");
        assert_eq!(frames[0].data["receipt"]["text"], "Billing <down>");
        assert_eq!(frames[0].data["receipt"]["at"], "2.9s");
        assert_eq!(view.sinks["status"].receipts.len(), 1);
        assert_eq!(view.sinks["status"].kind, "statuspage");
        let before = view.timeline.len();
        let request: EventKind = serde_json::from_value(json!({
            "event": "traffic-request", "traffic": "t", "scheduled-us": 1, "lateness-us": 0,
            "ok": true, "status": 200, "latency-us": 1
        }))
        .expect("a traffic request");
        assert!(view.apply(&event(3, 3_100_000, request)).is_empty());
        assert_eq!(view.timeline.len(), before, "traffic requests are not timeline lines");
    }
}
