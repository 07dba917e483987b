//! Runs side by side on one engine (issue 13.2): four `firedrill run` processes started at once,
//! sharing build contexts, each reach their normal verdicts and leave nothing behind.

use std::path::Path;
use std::process::Command;

use std::io::BufRead;
use std::os::fd::AsRawFd;
use std::time::Duration;

use crate::support::{demo_images, describe, firedrill, leftovers, report, root, stack_lock};

/// A `prepare` written the way many are: it empties its output folder, spends a moment producing
/// (the `sleep` stands in for a compiler), then fills it file by file, with content of its own
/// (the process id), so every run changes the fingerprint and rebuilds. Packing the context
/// while another run's copy of this script runs would find `gen` missing or half-written.
const PREPARE: &str = r#"set -eu
rm -rf gen
sleep 1
mkdir gen
i=0
while [ "$i" -lt 300 ]; do
  echo "prepared by $$, file $i" > "gen/f$i"
  i=$((i + 1))
done
"#;

/// smoke.yaml with billing built from the test's own context.
fn scenario(name: &str, tag: &str, postgres: &Path) -> String {
    format!(
        r#"name: {name}
stack:
  services:
    db:
      build:
        context: {postgres}
        tag: firedrill-demo/postgres:15
        prepare: [sh, prepare.sh]
      ports: [5432]
      health:
        exec: [pg_isready, -h, 127.0.0.1, -U, postgres]
        interval: 250ms
    billing:
      build:
        context: ctx
        tag: {tag}
        prepare: [sh, prepare.sh]
      env:
        DATABASE_URL: "postgres://postgres@{{{{ services.db.addr }}}}/billing"
      ports: [8080]
      health:
        http: {{ port: 8080, path: /health }}
        interval: 250ms
      depends-on: [db]
steady-state:
  - name: billing is healthy
    http: {{ service: billing, port: 8080, path: /health, status: 200 }}
steps:
  - name: restart billing
    restart: {{ service: billing }}
  - wait: 1s
expect:
  - steady-state: before
  - healthy-within: {{ service: billing, after: restart billing, within: 10s }}
  - steady-state: after
"#,
        postgres = postgres.display()
    )
}

#[test]
fn four_runs_started_at_once_sharing_contexts_all_reach_their_verdicts() {
    let _serial = stack_lock();
    demo_images();
    let dir = tempfile::tempdir().unwrap();
    let label = format!("firedrill.test=concurrent-{}", std::process::id());
    let tag = format!("firedrill-test/concurrent-{}:1", std::process::id());
    let _remove = RemoveImages(label.clone());
    let ctx = dir.path().join("ctx");
    fs_err::create_dir(&ctx).unwrap();
    fs_err::write(
        ctx.join("Dockerfile"),
        format!("FROM firedrill-demo/billing:1.0\nLABEL {label}\nCOPY gen /gen\n"),
    )
    .unwrap();
    fs_err::write(ctx.join("prepare.sh"), PREPARE).unwrap();
    let postgres = root().join("demo/images/postgres");
    for name in ["shared-a", "shared-b"] {
        fs_err::write(dir.path().join(format!("{name}.yaml")), scenario(name, &tag, &postgres))
            .unwrap();
    }

    // Two demo scenarios sharing the demo's contexts (their `prepare` runs every time), two
    // sharing the test's context (rebuilt every time): all started at once.
    let files = [
        root().join("scenarios/smoke.yaml"),
        root().join("scenarios/db-pause.yaml"),
        dir.path().join("shared-a.yaml"),
        dir.path().join("shared-b.yaml"),
    ];
    let children: Vec<_> = files
        .iter()
        .enumerate()
        .map(|(i, file)| {
            let report_dir = dir.path().join(format!("report-{i}"));
            let child = firedrill()
                .args(["run", "--report"])
                .arg(&report_dir)
                .arg(file)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            (file, report_dir, child)
        })
        .collect();
    let results: Vec<_> = children
        .into_iter()
        .map(|(file, report_dir, child)| (file, report_dir, child.wait_with_output().unwrap()))
        .collect();

    let mut built = 0;
    for (file, report_dir, output) in &results {
        assert_eq!(output.status.code(), Some(0), "{}: {}", file.display(), describe(output));
        let report = report(report_dir);
        assert_eq!(report["status"], "completed", "{}", file.display());
        let run_id = report["run-id"].as_str().unwrap();
        assert_eq!(leftovers(run_id), Vec::<String>::new(), "{} left objects", file.display());
        let journal = fs_err::read_to_string(report_dir.join("journal.jsonl")).unwrap();
        for line in journal.lines() {
            let event: serde_json::Value = serde_json::from_str(line).unwrap();
            if event["event"] == "image-ready" && event["image"] == tag.as_str() {
                assert_eq!(event["built"], true, "every run changed the context: {line}");
                built += 1;
            }
        }
    }
    assert_eq!(built, 2, "both runs of the test's context built it");
}

/// Removes every image the test built (its tag, and the ones later builds left untagged), also
/// when an assertion fails.
struct RemoveImages(String);

impl Drop for RemoveImages {
    fn drop(&mut self) {
        let Ok(ids) = Command::new("docker")
            .args(["image", "ls", "-q", "--filter", &format!("label={}", self.0)])
            .output()
        else {
            return;
        };
        let ids = String::from_utf8_lossy(&ids.stdout);
        let ids: std::collections::BTreeSet<&str> = ids.lines().collect();
        if !ids.is_empty() {
            let _ = Command::new("docker")
                .args(["rmi", "-f"])
                .args(ids)
                .stdout(std::process::Stdio::null())
                .status();
        }
    }
}

#[test]
fn a_build_waits_for_the_process_that_holds_its_context() {
    demo_images();
    let dir = tempfile::tempdir().unwrap();
    let label = format!("firedrill.test=lockwait-{}", std::process::id());
    let tag = format!("firedrill-test/lockwait-{}:1", std::process::id());
    let _remove = RemoveImages(label.clone());
    let ctx = dir.path().join("ctx");
    fs_err::create_dir(&ctx).unwrap();
    fs_err::write(
        ctx.join("Dockerfile"),
        format!("FROM firedrill-demo/billing:1.0\nLABEL {label}\n"),
    )
    .unwrap();
    let file = dir.path().join("lockwait.yaml");
    fs_err::write(
        &file,
        format!("name: lockwait\nstack:\n  services:\n    app:\n      build: {{ context: ctx, tag: {tag} }}\n"),
    )
    .unwrap();

    // This test process holds the context, as another firedrill run would.
    let held = std::fs::File::open(&ctx).unwrap();
    // SAFETY: a valid open descriptor; flock takes no pointers.
    assert_eq!(unsafe { libc::flock(held.as_raw_fd(), libc::LOCK_EX) }, 0);

    let mut child = firedrill()
        .args(["images"])
        .arg(&file)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (lines, received) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    let waiting = loop {
        match received.recv_timeout(Duration::from_secs(60)) {
            Ok(line) if line.contains("waiting for another firedrill process") => break line,
            Ok(_) => {}
            Err(error) => panic!("firedrill images never said it waits for the lock: {error}"),
        }
    };
    assert!(waiting.contains(&ctx.display().to_string()), "{waiting}");
    assert!(child.try_wait().unwrap().is_none(), "it must not build while the context is held");
    assert!(received.recv_timeout(Duration::from_millis(500)).is_err(), "nothing else happens");

    drop(held);
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains(&format!("built   {tag}")), "{stdout}");
}
