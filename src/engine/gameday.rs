//! Gameday: who answers the `human` steps' prompts. Scripted responders (`--responders FILE`) act
//! inside the step itself (`steps/human.rs`); people act through a [`Desk`] the CLI hands in (the
//! terminal, the live console): it lists the open prompts, takes acknowledgements and decisions,
//! and passes every journal event of the run on to whoever watches (the console's timeline).

use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

use crate::journal::Event;
use crate::scenario::gameday::Responders;

/// Who answers prompts in a run.
#[derive(Debug, Clone, Default)]
pub struct Gameday {
    /// Scripted people, per role.
    pub responders: Option<Arc<Responders>>,
    /// Where people answer (terminal, console).
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
    /// The service a "we decided to roll back" answer rolls back, when the prompt offers it.
    pub roll_back: Option<String>,
}

/// A person's answer to a prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// Acknowledged (for a prompt that offers a decision: "go on").
    Acknowledge,
    /// "We decided to roll back" (only where the prompt offers it).
    RollBack,
}

/// Why an answer was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnswerError {
    /// No open prompt has that step (never prompted, or over already).
    #[error("no open prompt for step `{0}`")]
    NotOpen(String),
    /// The prompt offers no such decision.
    #[error("the prompt of `{0}` offers no decision to roll back")]
    NotOffered(String),
}

#[derive(Debug)]
struct Entry {
    open: OpenPrompt,
    answers: mpsc::UnboundedSender<(Answer, String)>,
}

/// Told about every journal event of the runs a desk serves, under the journal's lock: it must be
/// quick and must not record events.
pub type Watcher = Arc<dyn Fn(&Event) + Send + Sync>;

/// The open prompts of a run, the way people answer them, and the run's events for whoever
/// watches. Cheap to clone.
#[derive(Clone, Default)]
pub struct Desk {
    open: Arc<Mutex<Vec<Entry>>>,
    watchers: Arc<Mutex<Vec<Watcher>>>,
}

impl std::fmt::Debug for Desk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Desk").field("open", &self.lock().len()).finish()
    }
}

impl Desk {
    /// Acknowledge the oldest open prompt (of `role`, when given); the step acknowledged.
    pub fn acknowledge_oldest(&self, role: Option<&str>, by: &str) -> Option<String> {
        let open = self.lock();
        let entry = open.iter().find(|e| role.is_none_or(|role| e.open.role == role))?;
        entry.answers.send((Answer::Acknowledge, by.to_owned())).ok()?;
        Some(entry.open.step.clone())
    }

    /// Decide to roll back at the oldest open prompt that offers it; the step answered.
    pub fn roll_back_oldest(&self, by: &str) -> Option<String> {
        let open = self.lock();
        let entry = open.iter().find(|e| e.open.roll_back.is_some())?;
        entry.answers.send((Answer::RollBack, by.to_owned())).ok()?;
        Some(entry.open.step.clone())
    }

    /// Answer the open prompt of `step`.
    pub fn answer(&self, step: &str, answer: Answer, by: &str) -> Result<(), AnswerError> {
        let open = self.lock();
        let not_open = || AnswerError::NotOpen(step.to_owned());
        let entry = open.iter().find(|e| e.open.step == step).ok_or_else(not_open)?;
        if answer == Answer::RollBack && entry.open.roll_back.is_none() {
            return Err(AnswerError::NotOffered(step.to_owned()));
        }
        entry.answers.send((answer, by.to_owned())).map_err(|_| not_open())
    }

    /// Call `watcher` with every journal event of the runs this desk serves, from now on.
    pub fn watch(&self, watcher: Watcher) {
        self.watchers.lock().expect("desk watchers lock poisoned").push(watcher);
    }

    /// Pass a journal event on to the watchers (the run's journal listener).
    pub(super) fn publish(&self, event: &Event) {
        for watcher in self.watchers.lock().expect("desk watchers lock poisoned").iter() {
            watcher(event);
        }
    }

    /// Register a prompt; answers arrive on the receiver until [`Desk::close`].
    pub(super) fn open(&self, open: OpenPrompt) -> mpsc::UnboundedReceiver<(Answer, String)> {
        let (answers, receiver) = mpsc::unbounded_channel();
        self.lock().push(Entry { open, answers });
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
