//! `clock-skew` (issue 17, part 4) against the real engine: `cache` (Debian redis) started with
//! libfaketime preloaded; its clock, read with `date` inside the container, is two
//! hours ahead during the step and back after it; nothing is left. A SIGKILL of the harness
//! during the skew leaves the skew and its offset folder, which `firedrill gc` removes with the
//! stack; a service whose image has no glibc loader (a static busybox `FROM scratch`) is refused
//! before anything starts.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::support::{
    demo_images, describe, ensure_file, firedrill, leftovers, run_id_of, stack_lock,
    wait_for_journal_line,
};

const EVENT_LIMIT: Duration = Duration::from_secs(180);

/// `cache`'s clock minus the host's, in seconds, as `date` run inside it (with the container's
/// environment, so with the preload) reads it.
#[expect(
    clippy::disallowed_methods,
    reason = "the test compares the container's clock with the host's wall clock: that is the point"
)]
fn skew_of(container: &str) -> i64 {
    let output = Command::new("docker")
        .args(["exec", container, "date", "+%s"])
        .output()
        .expect("failed to run docker exec");
    assert!(output.status.success(), "{}", describe(&output));
    let text = String::from_utf8_lossy(&output.stdout);
    let inside: i64 = text.lines().next().unwrap().trim().parse().unwrap();
    let host = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    inside - i64::try_from(host).unwrap()
}

/// Start `firedrill run` on `file` with its report in `dir` and its state in `state`, with the
/// demo images built and the host's libfaketime installed (Debian's package on a fresh machine).
fn spawn_run(file: &str, dir: &Path, state: &Path) -> Child {
    demo_images();
    ensure_file(
        &format!("/usr/lib/{}-linux-gnu/faketime/libfaketime.so.1", std::env::consts::ARCH),
        "libfaketime",
    );
    firedrill()
        .env("FIREDRILL_STATE_DIR", state)
        .args(["run", "--report"])
        .arg(dir)
        .arg(file)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("failed to start firedrill")
}

#[test]
fn clock_skew_moves_the_date_inside_cache_two_hours_ahead_and_back() {
    let _serial = stack_lock();
    let dir = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let child = spawn_run("tests/scenarios/webcache/clock-skew.yaml", dir.path(), state.path());
    let run_id = run_id_of(dir.path());
    let cache = format!("{run_id}-cache");

    let applied = wait_for_journal_line(dir.path(), EVENT_LIMIT, |v| {
        v["event"] == "fault-applied" && v["step"] == "cache ahead"
    });
    assert_eq!(applied["ok"], true, "{applied}");
    assert_eq!(applied["kind"], "clock-skew", "{applied}");
    let during = skew_of(&cache);
    assert!((during - 7_200).abs() <= 30, "cache's clock {during} s from the host's during +2h");

    let reverted = wait_for_journal_line(dir.path(), EVENT_LIMIT, |v| {
        v["event"] == "fault-reverted" && v["step"] == "cache ahead"
    });
    assert_eq!(reverted["ok"], true, "{reverted}");
    let after = skew_of(&cache);
    assert!(after.abs() <= 30, "cache's clock {after} s from the host's after the revert");

    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    assert_eq!(leftovers(&run_id), Vec::<String>::new());
    let offsets = std::env::temp_dir().join("firedrill-faketime").join(&run_id);
    assert!(!offsets.exists(), "{} left behind", offsets.display());
    eprintln!("clock-skew +2h: cache {during} s ahead during, {after} s after");
}

#[test]
fn a_clock_skew_left_by_a_killed_harness_is_removed_by_gc() {
    let _serial = stack_lock();
    let dir = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let mut child = spawn_run("tests/scenarios/webcache/clock-skew.yaml", dir.path(), state.path());
    let run_id = run_id_of(dir.path());
    let cache = format!("{run_id}-cache");
    let applied = wait_for_journal_line(dir.path(), EVENT_LIMIT, |v| {
        v["event"] == "fault-applied" && v["step"] == "cache ahead"
    });
    assert_eq!(applied["ok"], true, "{applied}");
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let file = applied["previous"]["file"].as_str().unwrap().to_owned();
    let offsets = std::env::temp_dir().join("firedrill-faketime").join(&run_id);
    assert!(Path::new(&file).starts_with(&offsets), "{file} outside {}", offsets.display());
    let left = skew_of(&cache);
    assert!((left - 7_200).abs() <= 30, "the skew outlives the harness: {left} s");
    assert!(state.path().join("ledger").join(format!("{run_id}.jsonl")).exists());

    let output = firedrill().env("FIREDRILL_STATE_DIR", state.path()).arg("gc").output().unwrap();
    assert!(output.status.success(), "{}", describe(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains(&format!(
            "{run_id}: clock-skew on {cache}: {file} removed: the clock is not skewed"
        )),
        "{stdout}"
    );
    assert_eq!(leftovers(&run_id), Vec::<String>::new());
    assert!(!offsets.exists(), "{} left behind", offsets.display());
    assert!(!state.path().join("ledger").join(format!("{run_id}.jsonl")).exists());
}

#[test]
fn clock_skew_of_a_static_binary_image_is_refused_before_anything_starts() {
    let _serial = stack_lock();
    let dir = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let file = "tests/scenarios/webcache/clock-skew-static.yaml";
    let output = spawn_run(file, dir.path(), state.path()).wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(
            "error: `clock-skew` cannot apply to service `ticker`: its image has no glibc dynamic \
             loader"
        ) && stderr.contains("static or use another libc")
            && stderr.contains("(image `firedrill-test/busybox-static:1`)"),
        "{stderr}"
    );
    let journal = fs_err::read_to_string(dir.path().join("journal.jsonl")).unwrap();
    assert!(!journal.contains("\"network-created\""), "{journal}");
    assert!(!journal.contains("\"service-started\""), "{journal}");
    let run_id = run_id_of(dir.path());
    assert_eq!(leftovers(&run_id), Vec::<String>::new());
    let offsets = std::env::temp_dir().join("firedrill-faketime").join(&run_id);
    assert!(!offsets.exists(), "{} created", offsets.display());
}
