//! Gameday: who answers the `human` steps' prompts. Scripted responders (`--responders FILE`) act
//! inside the step itself (`steps/human.rs`); people act through a [`Desk`] the CLI hands in (the
//! terminal, or the live console): it lists the open prompts and takes acknowledgements.

use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

use crate::scenario::gameday::Responders;

/// Who answers prompts in a run.
#[derive(Debug, Clone, Default)]
pub struct Gameday {
    /// Scripted people, per role.
    pub responders: Option<Arc<Responders>>,
    /// Where people acknowledge (terminal, console).
    pub desk: Option<Desk>,
}

/// A prompt waiting for its person, as the desk shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenPrompt {
    /// The step.
    pub step: String,
    /// Who is asked.
    pub role: String,
    /// What they are asked.
    pub prompt: String,
    /// The runbook, if any.
    pub runbook: Option<String>,
    /// When it was shown, µs into the run.
    pub shown_us: u64,
    /// When the step stops waiting, µs into the run.
    pub deadline_us: u64,
}

#[derive(Debug)]
struct Entry {
    open: OpenPrompt,
    acks: mpsc::UnboundedSender<String>,
}

/// The open prompts of a run and the way people acknowledge them. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Desk {
    open: Arc<Mutex<Vec<Entry>>>,
}

impl Desk {
    /// Acknowledge the oldest open prompt (of `role`, when given); the step acknowledged.
    pub fn acknowledge_oldest(&self, role: Option<&str>, by: &str) -> Option<String> {
        let open = self.lock();
        let entry = open.iter().find(|e| role.is_none_or(|role| e.open.role == role))?;
        entry.acks.send(by.to_owned()).ok()?;
        Some(entry.open.step.clone())
    }

    /// Register a prompt; acknowledgements arrive on the receiver until [`Desk::close`].
    pub(super) fn open(&self, open: OpenPrompt) -> mpsc::UnboundedReceiver<String> {
        let (acks, receiver) = mpsc::unbounded_channel();
        self.lock().push(Entry { open, acks });
        receiver
    }

    /// The step is over: its prompt is no longer open.
    pub(super) fn close(&self, step: &str) {
        self.lock().retain(|e| e.open.step != step);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Entry>> {
        self.open.lock().expect("desk lock poisoned")
    }
}
