//! `io-limit` (issue 17, item 3b) against the real engine: redis's data folder on a named volume
//! (the host's disk) throttled through the container's blkio cgroup. The effect is measured from
//! inside the container with `dd` and direct I/O (cgroup v1 throttles direct and synchronous I/O
//! only) during each step and after them, next to the cgroup files on the host; a SIGINT reverts
//! it, and a SIGKILL leaves a ledger `firedrill gc` reverts. A path on the writable layer (no
//! block device of the container's own) fails its step with the reason.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::faults::{docker, fault_event as event, spawn_run};
use crate::support::{
    describe, firedrill, leftovers, run_id_of, stack_lock, wait_for_journal_line,
};

const EVENT_LIMIT: Duration = Duration::from_secs(120);

const SCENARIO: &str = "tests/compose/iolimit/scenario.yaml";

fn journal_has(dir: &Path, event: &str, step: &str) -> bool {
    fs_err::read_to_string(dir.join("journal.jsonl")).unwrap().lines().any(|line| {
        let value: serde_json::Value = serde_json::from_str(line).unwrap();
        value["event"] == event && value["step"] == step
    })
}

/// `dd ARGS` run as root inside `container`: bytes copied and seconds taken, from dd's own
/// summary ("4194304 bytes (4.2 MB, 4.0 MiB) copied, 4.00401 s, 1.0 MB/s").
fn dd(container: &str, args: &[&str]) -> (f64, f64) {
    let mut argv = vec!["exec", "-u", "0", container, "dd"];
    argv.extend_from_slice(args);
    let output = docker(&argv);
    assert!(output.status.success(), "{}", describe(&output));
    let text = String::from_utf8_lossy(&output.stderr);
    let summary = text.lines().find(|line| line.contains(" copied, ")).unwrap_or_else(|| {
        panic!("no dd summary: {}", describe(&output));
    });
    let bytes: f64 = summary.split(' ').next().unwrap().parse().unwrap();
    let seconds: f64 =
        summary.split(" copied, ").nth(1).unwrap().split(' ').next().unwrap().parse().unwrap();
    (bytes, seconds)
}

/// 4 MiB written to `file` in 256 KiB direct writes: bytes per second.
fn write_rate(container: &str, file: &str) -> f64 {
    let of = format!("of={file}");
    let (bytes, seconds) =
        dd(container, &["if=/dev/zero", &of, "bs=256k", "count=16", "oflag=direct"]);
    assert_eq!(bytes, 4.0 * 1024.0 * 1024.0);
    bytes / seconds
}

/// `file` read back in 256 KiB direct reads: bytes per second.
fn read_rate(container: &str, file: &str) -> f64 {
    let input = format!("if={file}");
    let (bytes, seconds) = dd(container, &[&input, "of=/dev/null", "bs=256k", "iflag=direct"]);
    assert_eq!(bytes, 4.0 * 1024.0 * 1024.0);
    bytes / seconds
}

/// The throttle file `name` of the cgroup folder a `fault-applied` event's ledger record names.
fn throttle_file(applied: &serde_json::Value, name: &str) -> String {
    let cgroup = applied["previous"]["cgroup"].as_str().unwrap();
    fs_err::read_to_string(Path::new(cgroup).join(name)).unwrap_or_default()
}

#[test]
fn io_limit_throttles_direct_io_on_a_volume_as_measured_inside_and_is_undone() {
    let _serial = stack_lock();
    let dir = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let child = spawn_run(SCENARIO, dir.path(), state.path(), &[]);
    let run_id = run_id_of(dir.path());
    let cache = format!("{run_id}-cache");

    // 20 write operations per second: 60 direct 4 KiB writes take about 3 s.
    let applied = event(dir.path(), "fault-applied", "few writes");
    assert_eq!(applied["kind"], "io-limit", "{applied}");
    let device = applied["previous"]["device"].as_str().unwrap().to_owned();
    assert!(
        throttle_file(&applied, "blkio.throttle.write_iops_device")
            .contains(&format!("{device} 20")),
        "{applied}"
    );
    let (bytes, seconds) =
        dd(&cache, &["if=/dev/zero", "of=/data/ops", "bs=4k", "count=60", "oflag=direct"]);
    let ops = bytes / 4096.0 / seconds;
    assert!(
        !journal_has(dir.path(), "fault-reverted", "few writes"),
        "the fault ended during the measurement"
    );
    assert!((ops / 20.0 - 1.0).abs() <= 0.25, "{ops:.1} writes/s for 20 asked");

    // 1 MiB/s each way: 4 MiB written, then read back, about 4 s each.
    let applied = event(dir.path(), "fault-applied", "slow disk");
    let detail = applied["detail"].as_str().unwrap();
    assert!(detail.contains("read 1048576 B/s, write 1048576 B/s"), "{detail}");
    assert!(
        throttle_file(&applied, "blkio.throttle.read_bps_device")
            .contains(&format!("{device} 1048576")),
        "{applied}"
    );
    let written = write_rate(&cache, "/data/big");
    let read = read_rate(&cache, "/data/big");
    assert!(
        !journal_has(dir.path(), "fault-reverted", "slow disk"),
        "the fault ended during the measurement"
    );
    let asked = 1024.0 * 1024.0;
    assert!((written / asked - 1.0).abs() <= 0.2, "{written:.0} B/s written for {asked} asked");
    assert!((read / asked - 1.0).abs() <= 0.2, "{read:.0} B/s read for {asked} asked");

    let reverted = event(dir.path(), "fault-reverted", "slow disk");
    let detail = reverted["detail"].as_str().unwrap();
    assert!(detail.starts_with(&format!("throttle on {device} back to no limits")), "{detail}");
    for file in ["blkio.throttle.read_bps_device", "blkio.throttle.write_bps_device"] {
        let text = throttle_file(&applied, file);
        assert!(!text.contains(&device), "{file} after the revert: {text}");
    }
    let free_write = write_rate(&cache, "/data/big");
    let free_read = read_rate(&cache, "/data/big");
    assert!(free_write > 4.0 * asked, "{free_write:.0} B/s written after the revert");
    assert!(free_read > 4.0 * asked, "{free_read:.0} B/s read after the revert");

    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    assert_eq!(leftovers(&run_id), Vec::<String>::new());
    eprintln!(
        "io-limit: {ops:.1} writes/s for 20; {written:.0} B/s written and {read:.0} B/s read for \
         {asked}; after: {free_write:.0} B/s written, {free_read:.0} B/s read"
    );
}

#[test]
fn an_io_limit_is_reverted_after_sigint_and_the_run_exits_130() {
    let _serial = stack_lock();
    let dir = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let child = spawn_run(SCENARIO, dir.path(), state.path(), &[]);
    let run_id = run_id_of(dir.path());
    let applied = event(dir.path(), "fault-applied", "few writes");
    let device = applied["previous"]["device"].as_str().unwrap().to_owned();
    let status = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(130), "{}", describe(&output));
    let reverted = event(dir.path(), "fault-reverted", "few writes");
    let detail = reverted["detail"].as_str().unwrap();
    assert!(detail.starts_with(&format!("throttle on {device} back to no limits")), "{detail}");
    assert!(!journal_has(dir.path(), "fault-applied", "slow disk"), "no fault after the signal");
    assert_eq!(leftovers(&run_id), Vec::<String>::new());
    assert!(!state.path().join("ledger").join(format!("{run_id}.jsonl")).exists());
}

#[test]
fn an_io_limit_left_by_a_killed_harness_is_removed_by_gc() {
    let _serial = stack_lock();
    let dir = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let mut child = spawn_run(SCENARIO, dir.path(), state.path(), &[]);
    let run_id = run_id_of(dir.path());
    let applied = event(dir.path(), "fault-applied", "few writes");
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let device = applied["previous"]["device"].as_str().unwrap().to_owned();
    let limit = throttle_file(&applied, "blkio.throttle.write_iops_device");
    assert!(limit.contains(&format!("{device} 20")), "the limit outlives the harness: {limit}");

    let output = firedrill().env("FIREDRILL_STATE_DIR", state.path()).arg("gc").output().unwrap();
    assert!(output.status.success(), "{}", describe(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let cache = format!("{run_id}-cache");
    assert!(
        stdout.contains(&format!(
            "{run_id}: io-limit on {cache}: throttle on {device} back to no limits"
        )),
        "{stdout}"
    );
    assert_eq!(leftovers(&run_id), Vec::<String>::new());
    assert!(!state.path().join("ledger").join(format!("{run_id}.jsonl")).exists());
}

#[test]
fn an_io_limit_on_the_writable_layer_fails_its_step_naming_why() {
    let _serial = stack_lock();
    let dir = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let file = "tests/scenarios/webcache/io-limit-writable-layer.yaml";
    let child = spawn_run(file, dir.path(), state.path(), &[]);
    let run_id = run_id_of(dir.path());
    let ended = wait_for_journal_line(dir.path(), EVENT_LIMIT, |v| {
        v["event"] == "step-ended" && v["step"] == "throttle tmp"
    });
    assert_eq!(ended["outcome"], "failed", "{ended}");
    let error = ended["error"].as_str().unwrap();
    assert!(error.starts_with("`io-limit` cannot throttle `/tmp`: it is on "), "{error}");
    assert!(
        error.ends_with(
            "name a path on a named volume or a bind mount (a block device's file system)"
        ),
        "{error}"
    );
    // This machine's engine: fuse-overlayfs (overlay2 elsewhere gives overlayfs's reason).
    assert!(error.contains("FUSE") || error.contains("overlayfs"), "{error}");
    assert!(!journal_has(dir.path(), "fault-applied", "throttle tmp"), "nothing is applied");
    let output = child.wait_with_output().unwrap();
    assert_ne!(output.status.code(), Some(0), "{}", describe(&output));
    assert_eq!(leftovers(&run_id), Vec::<String>::new());
    assert!(!state.path().join("ledger").join(format!("{run_id}.jsonl")).exists());
}
