//! Shared helpers for the integration tests: the real CLI, the demo images (built once per test
//! binary), Docker leftovers by label, and waiting on journal lines (readiness is data).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use firedrill::{EventKind, Outcome, Rehearsal};

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The `firedrill` binary under test, run from the repository root with colour off.
///
/// Runs record into a history under the target folder (`FIREDRILL_HISTORY`), never into the
/// user's `STATE/history.sqlite`; a test that judges the history passes its own `--history PATH`,
/// which wins over the variable.
pub fn firedrill() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_firedrill"));
    command
        .current_dir(root())
        .env("NO_COLOR", "1")
        .env_remove("FIREDRILL_LOG")
        .env("FIREDRILL_HISTORY", test_history());
    command
}

/// The history file the tests' runs record into: `target/tmp/it-history.sqlite`.
pub fn test_history() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("it-history.sqlite")
}

/// Build the demo images once for this test binary (`firedrill images`), panicking with the
/// builder's output if that fails.
pub fn demo_images() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let output = firedrill()
            .args(["images", "scenarios/smoke.yaml"])
            .output()
            .expect("failed to run firedrill images");
        assert!(
            output.status.success(),
            "firedrill images failed:\n{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    });
}

/// Full-stack runs share two cores: one at a time keeps health timings meaningful.
pub fn stack_lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Names of containers, networks and volumes carrying `firedrill.run=RUN`.
pub fn leftovers(run_id: &str) -> Vec<String> {
    let filter = format!("label=firedrill.run={run_id}");
    let mut names = Vec::new();
    for args in [
        vec!["ps", "-a", "--filter", &filter, "--format", "{{.Names}}"],
        vec!["network", "ls", "--filter", &filter, "--format", "{{.Name}}"],
        vec!["volume", "ls", "--filter", &filter, "--format", "{{.Name}}"],
    ] {
        let output = Command::new("docker").args(&args).output().expect("failed to run docker");
        assert!(output.status.success(), "docker {args:?} failed");
        names.extend(String::from_utf8_lossy(&output.stdout).lines().map(str::to_owned));
    }
    names
}

/// stdout and stderr of a finished command, for assertion messages.
pub fn describe(output: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A scenario run through the CLI with a report folder.
pub struct CliRun {
    /// The CLI's exit status and output.
    pub output: Output,
    /// `report.json`.
    pub report: serde_json::Value,
    /// `journal.jsonl`, one value per event.
    pub journal: Vec<serde_json::Value>,
}

impl CliRun {
    /// The check named `name` in the report.
    pub fn check(&self, name: &str) -> serde_json::Value {
        check(&self.report, name).clone()
    }
}

/// The check named `name` in a parsed `report.json`.
pub fn check<'r>(report: &'r serde_json::Value, name: &str) -> &'r serde_json::Value {
    report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check `{name}` in {report:#}"))
}

/// `firedrill run --report DIR FILE` (with the demo images built): its output, report and
/// journal. Asserts that the run left no labelled container or network behind.
pub fn rehearse(file: &str) -> CliRun {
    demo_images();
    let dir = tempfile::tempdir().expect("tempdir");
    let output = firedrill()
        .args(["run", "--report"])
        .arg(dir.path())
        .arg(file)
        .output()
        .expect("firedrill");
    let report = report(dir.path());
    let run_id = report["run-id"].as_str().expect("run-id").to_owned();
    assert_eq!(leftovers(&run_id), Vec::<String>::new(), "{file} left objects behind");
    let journal = fs_err::read_to_string(dir.path().join("journal.jsonl"))
        .expect("journal.jsonl is written")
        .lines()
        .map(|line| serde_json::from_str(line).expect("a journal line is JSON"))
        .collect();
    CliRun { output, report, journal }
}

/// Rehearse `file` in this process through the library ([`firedrill::Rehearsal`], as a user's
/// `cargo test` does), with the demo images built and `configure` applied to the builder. Asserts
/// that the run left no labelled container, network or volume behind.
pub fn rehearse_in_process(file: &str, configure: impl FnOnce(Rehearsal) -> Rehearsal) -> Outcome {
    demo_images();
    let rehearsal =
        Rehearsal::from_file(root().join(file)).unwrap_or_else(|error| panic!("{error:?}"));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("failed to start a tokio runtime");
    let outcome =
        runtime.block_on(configure(rehearsal).run()).unwrap_or_else(|error| panic!("{error:?}"));
    assert_eq!(leftovers(outcome.run_id()), Vec::<String>::new(), "{file} left objects behind");
    outcome
}

/// Whether the journal of `outcome` holds an event `matches` accepts.
pub fn journal_has(outcome: &Outcome, matches: impl Fn(&EventKind) -> bool) -> bool {
    outcome.events().iter().any(|event| matches(&event.kind))
}

/// The parsed `report.json` in `dir`.
pub fn report(dir: &Path) -> serde_json::Value {
    let text = fs_err::read_to_string(dir.join("report.json")).expect("report.json is written");
    serde_json::from_str(&text).expect("report.json is JSON")
}

/// Poll `journal.jsonl` until a line satisfies `predicate`, or panic after `limit`. Polling a file
/// the harness streams is how a test waits on what the run did, not on time passing.
pub fn wait_for_journal_line(
    dir: &Path,
    limit: Duration,
    predicate: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let path = dir.join("journal.jsonl");
    let attempts = limit.as_millis() / 100;
    for _ in 0..attempts {
        if let Ok(text) = fs_err::read_to_string(&path) {
            for line in text.lines() {
                if let Ok(value) = serde_json::from_str::<serde_json::Value>(line)
                    && predicate(&value)
                {
                    return value;
                }
            }
        }
        poll_pause();
    }
    panic!("no journal line matched within {limit:?} in {}", path.display());
}

#[expect(
    clippy::disallowed_methods,
    reason = "a poll interval between reads of a file, not a readiness sleep"
)]
fn poll_pause() {
    std::thread::sleep(Duration::from_millis(100));
}

/// The run id from a journal's first line.
pub fn run_id_of(dir: &Path) -> String {
    let first =
        wait_for_journal_line(dir, Duration::from_secs(30), |v| v["event"] == "run-started");
    first["run-id"].as_str().expect("run_id is a string").to_owned()
}

/// Make sure a program a test needs is on `PATH`, installing its Debian package when it is not
/// (as root, with `apt-get`; once per test binary and package), so the README's test command
/// needs nothing installed by hand. Panics with what to install where that is not possible.
pub fn ensure_tool(program: &str, debian_package: &str) {
    ensure(&format!("command -v {program}"), &format!("`{program}`"), debian_package);
}

/// Make sure the file at `path` exists (a library a fault needs on the host, such as
/// libfaketime), installing its Debian package when missing, as [`ensure_tool`] does.
pub fn ensure_file(path: &str, debian_package: &str) {
    ensure(&format!("test -e {path}"), path, debian_package);
}

/// Install `debian_package` unless the shell `test` succeeds (one install at a time).
fn ensure(test: &str, what: &str, debian_package: &str) {
    static INSTALLS: Mutex<()> = Mutex::new(());
    let present = || {
        Command::new("sh").args(["-c", test]).output().is_ok_and(|output| output.status.success())
    };
    let _one_at_a_time = INSTALLS.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if present() {
        return;
    }
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|output| String::from_utf8_lossy(&output.stdout).trim() == "0");
    assert!(
        root,
        "{what} is missing and this test is not root: install Debian's `{debian_package}`"
    );
    let install = format!(
        "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq {debian_package}"
    );
    let output = Command::new("sh").args(["-c", &install]).output().expect("failed to run apt-get");
    assert!(
        output.status.success() && present(),
        "installing `{debian_package}` for {what} failed:\n{}",
        describe(&output)
    );
}
