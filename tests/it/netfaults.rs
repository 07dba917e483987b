//! Host-side faults (issue 17) on the non-demo webcache stack, against the real engine: `packet`
//! loss measured over 10,000 pings from inside the stack and gone after the revert; `dns` seen by
//! the faulted container's own resolver (NXDOMAIN, then late) while other names resolve; a
//! SIGKILL of the harness during a `packet` fault leaves a ledger `firedrill gc` reverts.

use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use crate::faults::{docker, fault_event as event, inspect};
use crate::support::{
    describe, ensure_tool, firedrill, leftovers, run_id_of, stack_lock, wait_for_journal_line,
};

const EVENT_LIMIT: Duration = Duration::from_secs(180);

fn spawn_run(file: &str, report_dir: &Path, state: &Path) -> Child {
    crate::faults::spawn_run(file, report_dir, state, &[])
}

fn journal_has(dir: &Path, event: &str, step: &str) -> bool {
    fs_err::read_to_string(dir.join("journal.jsonl")).unwrap().lines().any(|line| {
        let value: serde_json::Value = serde_json::from_str(line).unwrap();
        value["event"] == event && value["step"] == step
    })
}

/// `ping` from the network namespace of container `from` to `address`: `count` echo requests
/// flooded with 20 in flight (no wait on a lost one); the share lost, in percent, from ping's own
/// summary.
fn ping_loss(from: &str, address: &str, count: u32) -> f64 {
    let pid = inspect(from, "{{.State.Pid}}");
    let output = Command::new("nsenter")
        .args(["--target", &pid, "--net", "--", "ping", "-q", "-n", "-f", "-l", "20", "-W", "1"])
        .args(["-c", &count.to_string(), address])
        .output()
        .expect("failed to run nsenter ping");
    let text = String::from_utf8_lossy(&output.stdout);
    let summary = text.lines().find(|l| l.contains("packet loss")).unwrap_or_else(|| {
        panic!("no ping summary: {}", describe(&output));
    });
    // "10000 packets transmitted, 9012 received, 9.88% packet loss, time 10234ms"
    let sent: f64 = summary.split(' ').next().unwrap().parse().unwrap();
    let received: f64 =
        summary.split(", ").nth(1).unwrap().split(' ').next().unwrap().parse().unwrap();
    assert_eq!(sent, f64::from(count), "{summary}");
    (sent - received) * 100.0 / sent
}

fn address(container: &str) -> String {
    inspect(container, "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}")
}

#[test]
fn packet_loss_of_10_percent_is_measured_over_10000_pings_and_undone() {
    let _serial = stack_lock();
    ensure_tool("ping", "iputils-ping");
    let dir = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let file = "tests/scenarios/webcache/packet-loss.yaml";
    let child = spawn_run(file, dir.path(), state.path());
    let run_id = run_id_of(dir.path());
    let (web, cache) = (format!("{run_id}-web"), format!("{run_id}-cache"));

    let applied = event(dir.path(), "fault-applied", "lose web packets");
    assert_eq!(applied["kind"], "packet", "{applied}");
    assert!(applied["previous"]["table"].as_str().unwrap().starts_with("firedrill_loss_"));
    let target = address(&web);
    // Echo requests reach `web` untouched; 10% of its replies are dropped on the way out.
    let during = ping_loss(&cache, &target, 10_000);
    assert!(
        !journal_has(dir.path(), "fault-reverted", "lose web packets"),
        "the fault ended before the 10,000 pings did: lengthen its `for`"
    );
    assert!((during - 10.0).abs() <= 2.0, "realised loss {during:.2}% for 10% asked");

    let reverted = event(dir.path(), "fault-reverted", "lose web packets");
    // The harness's own count from the table it deleted: dropped of sent, also near 10%.
    let detail = reverted["detail"].as_str().unwrap();
    let counted: f64 = detail
        .rsplit('(')
        .next()
        .and_then(|rest| rest.split('%').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no share in {detail}"));
    assert!((counted - 10.0).abs() <= 2.0, "{detail}");
    let after = ping_loss(&cache, &target, 1_000);
    assert_eq!(after, 0.0, "loss after the revert");

    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    assert_eq!(leftovers(&run_id), Vec::<String>::new());
    eprintln!("packet loss 10% asked: {during:.2}% over 10,000 pings; harness counted: {detail}");
}

/// `getent hosts NAME` inside `container`: whether it resolved, and how long it took.
#[expect(
    clippy::disallowed_methods,
    reason = "the test measures how late a name resolves inside the container: wall time is the point"
)]
fn resolve(container: &str, name: &str) -> (bool, Duration) {
    let started = Instant::now();
    let output = docker(&["exec", container, "getent", "hosts", name]);
    (output.status.success(), started.elapsed())
}

#[test]
fn dns_nxdomain_and_late_answers_are_seen_inside_the_service_and_undone() {
    let _serial = stack_lock();
    let dir = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let child = spawn_run("tests/scenarios/webcache/dns-fail.yaml", dir.path(), state.path());
    let run_id = run_id_of(dir.path());
    let web = format!("{run_id}-web");
    let applied = event(dir.path(), "fault-applied", "cache unknown");
    assert_eq!(applied["kind"], "dns", "{applied}");
    let (found, _) = resolve(&web, "cache");
    assert!(!found, "`cache` resolved inside `web` under NXDOMAIN");
    let (found, _) = resolve(&web, "web");
    assert!(found, "other names must still resolve");
    let reverted = event(dir.path(), "fault-reverted", "cache unknown");
    let detail = reverted["detail"].as_str().unwrap();
    // "redirect table T deleted; N queries for cache answered NXDOMAIN, M others forwarded"
    let faulted: u64 = detail
        .split("; ")
        .nth(1)
        .and_then(|counts| counts.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in {detail}"));
    assert!(faulted >= 1 && detail.contains("answered NXDOMAIN"), "{detail}");

    event(dir.path(), "fault-applied", "cache late");
    let (found, took) = resolve(&web, "cache");
    assert!(found, "`cache` must resolve, late");
    assert!(took >= Duration::from_secs(2), "`cache` resolved in {took:?} under a 2 s delay");
    assert!(
        !journal_has(dir.path(), "fault-reverted", "cache late"),
        "the fault ended during the measurement"
    );
    event(dir.path(), "fault-reverted", "cache late");
    wait_for_journal_line(dir.path(), EVENT_LIMIT, |v| {
        v["event"] == "step-started" && v["step"] == "after"
    });
    let (found, took) = resolve(&web, "cache");
    assert!(found && took < Duration::from_secs(2), "after the revert: {found} in {took:?}");

    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    assert_eq!(leftovers(&run_id), Vec::<String>::new());
}

#[test]
fn packet_loss_left_by_a_killed_harness_is_removed_by_gc() {
    let _serial = stack_lock();
    let dir = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let file = "tests/scenarios/webcache/packet-loss.yaml";
    let mut child = spawn_run(file, dir.path(), state.path());
    let run_id = run_id_of(dir.path());
    let applied = event(dir.path(), "fault-applied", "lose web packets");
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let table = applied["previous"]["table"].as_str().unwrap().to_owned();
    let web = format!("{run_id}-web");
    let pid = inspect(&web, "{{.State.Pid}}");
    let tables = || {
        let output = Command::new("nsenter")
            .args(["--target", &pid, "--net", "--", "nft", "list", "tables"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    assert!(tables().contains(&table), "the loss outlives the harness: {}", tables());

    let output = firedrill().env("FIREDRILL_STATE_DIR", state.path()).arg("gc").output().unwrap();
    assert!(output.status.success(), "{}", describe(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains(&format!("{run_id}: packet on {web}: table {table} deleted")),
        "{stdout}"
    );
    assert_eq!(leftovers(&run_id), Vec::<String>::new());
    assert!(!state.path().join("ledger").join(format!("{run_id}.jsonl")).exists());
}

/// `df -P PATH` inside `container`: the use in percent.
fn df_use(container: &str, path: &str) -> u32 {
    let output = docker(&["exec", container, "df", "-P", path]);
    assert!(output.status.success(), "{}", describe(&output));
    let text = String::from_utf8_lossy(&output.stdout);
    let line = text.lines().nth(1).unwrap_or_else(|| panic!("df printed {text}"));
    line.split_whitespace().nth(4).unwrap().trim_end_matches('%').parse().unwrap()
}

#[test]
fn disk_fill_fills_a_tmpfs_to_100_percent_so_redis_cannot_save_and_is_undone() {
    let _serial = stack_lock();
    let dir = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let child = spawn_run("tests/compose/diskfill/scenario.yaml", dir.path(), state.path());
    let run_id = run_id_of(dir.path());
    let cache = format!("{run_id}-cache");
    let save = || {
        let output = docker(&["exec", &cache, "redis-cli", "SAVE"]);
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    };
    let applied = event(dir.path(), "fault-applied", "fill data");
    assert_eq!(applied["kind"], "disk-fill", "{applied}");
    let file = applied["previous"]["file"].as_str().unwrap().to_owned();
    assert!(file.starts_with("/data/.firedrill-fill-"), "{applied}");
    let during = df_use(&cache, "/data");
    let refused = save();
    assert!(
        !journal_has(dir.path(), "fault-reverted", "fill data"),
        "the fault ended during the measurement"
    );
    assert_eq!(during, 100, "df inside the container: {applied}");
    assert!(refused.starts_with("ERR"), "SAVE on a full disk answered {refused:?}");

    event(dir.path(), "fault-reverted", "fill data");
    let after = df_use(&cache, "/data");
    assert!(after < 50, "df after the revert: {after}%");
    assert_eq!(save(), "OK");
    let listing = docker(&["exec", &cache, "ls", "-a", "/data"]);
    assert!(!String::from_utf8_lossy(&listing.stdout).contains(".firedrill-fill"));

    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    assert_eq!(leftovers(&run_id), Vec::<String>::new());
    eprintln!("disk-fill 100%: df {during}% during, {after}% after");
}

/// Ping replies of `size` bytes from `address` seen from `from`'s namespace: the rate they came
/// back at, bytes per second on the wire (ICMP + IP + Ethernet headers, as `tbf` counts them).
fn reply_rate(from: &str, address: &str, size: u32, count: u32) -> f64 {
    let pid = inspect(from, "{{.State.Pid}}");
    let output = Command::new("nsenter")
        .args(["--target", &pid, "--net", "--", "ping", "-q", "-n", "-f", "-l", "20", "-W", "2"])
        .args(["-s", &size.to_string(), "-c", &count.to_string(), address])
        .output()
        .expect("failed to run nsenter ping");
    let text = String::from_utf8_lossy(&output.stdout);
    let summary = text.lines().find(|l| l.contains("packet loss")).unwrap_or_else(|| {
        panic!("no ping summary: {}", describe(&output));
    });
    // "500 packets transmitted, 500 received, 0% packet loss, time 5321ms"
    let received: f64 =
        summary.split(", ").nth(1).unwrap().split(' ').next().unwrap().parse().unwrap();
    let millis: f64 =
        summary.rsplit("time ").next().unwrap().trim_end_matches("ms").parse().unwrap();
    received * f64::from(size + 8 + 20 + 14) * 1000.0 / millis.max(1.0)
}

#[test]
fn packet_rate_limits_egress_to_128_kib_per_second_and_is_undone() {
    let _serial = stack_lock();
    ensure_tool("ping", "iputils-ping");
    let dir = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let child = spawn_run("tests/scenarios/webcache/packet-rate.yaml", dir.path(), state.path());
    let run_id = run_id_of(dir.path());
    let (web, cache) = (format!("{run_id}-web"), format!("{run_id}-cache"));
    let applied = event(dir.path(), "fault-applied", "limit web egress");
    assert!(applied["detail"].as_str().unwrap().contains("tbf rate 1048576bit"), "{applied}");
    let target = address(&web);
    // 400 replies of 1442 bytes: ~4.4 s at 128 KiB/s, after a 16 KiB burst.
    let limited = reply_rate(&cache, &target, 1400, 400);
    assert!(
        !journal_has(dir.path(), "fault-reverted", "limit web egress"),
        "the fault ended during the measurement"
    );
    let asked = 128.0 * 1024.0;
    assert!((limited / asked - 1.0).abs() <= 0.15, "{limited:.0} B/s for {asked} B/s asked");
    event(dir.path(), "fault-reverted", "limit web egress");
    let free = reply_rate(&cache, &target, 1400, 400);
    assert!(free > 4.0 * asked, "{free:.0} B/s after the revert");

    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    assert_eq!(leftovers(&run_id), Vec::<String>::new());
    eprintln!("packet rate 128 KiB/s asked: {limited:.0} B/s measured, {free:.0} B/s after");
}

/// Whether this kernel was built with netem, from `/proc/config.gz`.
fn kernel_has_netem() -> bool {
    let output = Command::new("sh")
        .args(["-c", "zcat /proc/config.gz | grep -E '^CONFIG_NET_SCH_NETEM=(y|m)'"])
        .output()
        .unwrap();
    output.status.success()
}

#[test]
fn packet_delay_is_refused_before_anything_starts_on_a_kernel_without_netem() {
    if kernel_has_netem() {
        eprintln!("this kernel has netem: the refusal cannot be shown here");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let output = spawn_run("tests/scenarios/webcache/packet-delay.yaml", dir.path(), state.path())
        .wait_with_output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(
            "error: `packet` with `delay`, `jitter` needs netem: this kernel lacks CONFIG_NET_SCH_NETEM"
        ),
        "{stderr}"
    );
    let journal = fs_err::read_to_string(dir.path().join("journal.jsonl")).unwrap();
    assert!(!journal.contains("\"service-started\""), "{journal}");
}

#[test]
fn a_dns_fault_is_reverted_after_sigint_and_the_run_exits_130() {
    let _serial = stack_lock();
    let dir = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let child = spawn_run("tests/scenarios/webcache/dns-fail.yaml", dir.path(), state.path());
    let run_id = run_id_of(dir.path());
    event(dir.path(), "fault-applied", "cache unknown");
    let status = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(130), "{}", describe(&output));
    let reverted = event(dir.path(), "fault-reverted", "cache unknown");
    let detail = reverted["detail"].as_str().unwrap();
    assert!(detail.starts_with("redirect table firedrill_dns_"), "{detail}");
    assert!(!journal_has(dir.path(), "fault-applied", "cache late"), "no fault after the signal");
    assert_eq!(leftovers(&run_id), Vec::<String>::new());
    assert!(!state.path().join("ledger").join(format!("{run_id}.jsonl")).exists());
}

#[test]
fn a_dns_redirect_left_by_a_killed_harness_is_deleted_by_gc() {
    let _serial = stack_lock();
    let dir = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let mut child = spawn_run("tests/scenarios/webcache/dns-fail.yaml", dir.path(), state.path());
    let run_id = run_id_of(dir.path());
    let applied = event(dir.path(), "fault-applied", "cache unknown");
    child.kill().unwrap(); // SIGKILL: the responder dies with the harness, the redirect stays.
    child.wait().unwrap();
    let table = applied["previous"]["table"].as_str().unwrap().to_owned();
    let web = format!("{run_id}-web");
    // With nothing listening behind the redirect, every name fails, not only `cache`.
    let (found, _) = resolve(&web, "web");
    assert!(!found, "`web` resolved with the redirect left and no responder");

    let output = firedrill().env("FIREDRILL_STATE_DIR", state.path()).arg("gc").output().unwrap();
    assert!(output.status.success(), "{}", describe(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains(&format!("{run_id}: dns on {web}: redirect table {table} deleted")),
        "{stdout}"
    );
    assert_eq!(leftovers(&run_id), Vec::<String>::new());
    assert!(!state.path().join("ledger").join(format!("{run_id}.jsonl")).exists());
}
