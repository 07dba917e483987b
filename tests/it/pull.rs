//! Pull policies against a real registry (Debian's `docker-registry`, the CNCF Distribution
//! registry) that the tests start on 127.0.0.1 themselves: an image only in the registry runs with
//! the default `pull: missing`; `--pull never` fails fast naming it; an unreachable registry fails
//! with exit 2 before anything starts and leaves nothing behind.

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use firedrill::clock::instant_now;

use crate::support::{describe, firedrill, leftovers, report, root};

/// The demo's comms image (static, runs alone, answers `/health`), built if needed.
const SOURCE: &str = "firedrill-demo/comms:1.0";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn docker(args: &[&str]) {
    let output = Command::new("docker").args(args).output().expect("docker");
    assert!(output.status.success(), "docker {args:?}: {}", describe(&output));
}

/// A registry on a free port of 127.0.0.1, stopped when dropped.
struct Registry {
    child: Child,
    port: u16,
    _storage: tempfile::TempDir,
}

impl Registry {
    fn start() -> Registry {
        let storage = tempfile::tempdir().unwrap();
        let port = free_port();
        let config = storage.path().join("config.yml");
        fs_err::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n\
                 http:\n  addr: 127.0.0.1:{port}\n",
                storage.path().join("data").display()
            ),
        )
        .unwrap();
        crate::support::ensure_tool("docker-registry", "docker-registry");
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("failed to start docker-registry");
        let registry = Registry { child, port, _storage: storage };
        // Ready when it accepts connections (polled, bounded).
        let deadline = instant_now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(instant_now() < deadline, "the registry did not listen on {port} within 30 s");
            pause();
        }
        registry
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[expect(clippy::disallowed_methods, reason = "a poll interval while a port opens, bounded")]
fn pause() {
    std::thread::sleep(Duration::from_millis(50));
}

fn scenario(dir: &Path, image: &str) -> std::path::PathBuf {
    let file = dir.join("pull.yaml");
    fs_err::write(
        &file,
        format!(
            "name: pull\nstack:\n  services:\n    comms:\n      image: {image}\n      ports: [8080]\n      \
             health: {{ http: {{ port: 8080, path: /health }}, interval: 250ms }}\n\
             steady-state:\n  - name: comms answers\n    http: {{ service: comms, port: 8080, path: /health, status: 200 }}\n\
             steps:\n  - wait: 1s\nexpect:\n  - steady-state: after\n"
        ),
    )
    .unwrap();
    file
}

/// Build the source image the way the demo does (present when its context is unchanged).
fn source_image(dir: &Path) {
    let file = dir.join("source.yaml");
    fs_err::write(
        &file,
        format!(
            "name: source\nstack:\n  services:\n    comms:\n      build:\n        context: {}\n        \
             tag: {SOURCE}\n        prepare: [sh, prepare.sh]\n",
            root().join("demo/images/comms").display()
        ),
    )
    .unwrap();
    let output = firedrill().arg("images").arg(&file).output().unwrap();
    assert!(output.status.success(), "{}", describe(&output));
}

fn run(file: &Path, report_dir: &Path, extra: &[&str]) -> std::process::Output {
    firedrill().arg("run").args(extra).arg("--report").arg(report_dir).arg(file).output().unwrap()
}

#[test]
fn an_image_only_in_the_registry_is_pulled_and_never_means_offline() {
    let dir = tempfile::tempdir().unwrap();
    source_image(dir.path());
    let registry = Registry::start();
    let image = format!("127.0.0.1:{}/firedrill-test/pullme:1", registry.port);
    docker(&["tag", SOURCE, &image]);
    docker(&["push", &image]);
    // Only the registry has it now (the source tag stays).
    docker(&["rmi", &image]);
    let file = scenario(dir.path(), &image);

    // Offline: fails at once, naming the image, before anything starts.
    let started = instant_now();
    let output = run(&file, &dir.path().join("never"), &["--pull", "never"]);
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&format!("error: image `{image}`")), "{stderr}");
    assert!(stderr.contains("hint: "), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(30), "{:?}", started.elapsed());
    let never = report(&dir.path().join("never"));
    assert_eq!(never["status"], "aborted");
    assert_eq!(leftovers(never["run-id"].as_str().unwrap()), Vec::<String>::new());

    // The default, `pull: missing`: pulled, journaled with its digest, and the run passes.
    let output = run(&file, &dir.path().join("missing"), &[]);
    let pulled = Command::new("docker").args(["image", "inspect", &image]).output().unwrap();
    let _ = Command::new("docker").args(["rmi", &image]).output();
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    assert!(pulled.status.success(), "the image is local after the run");
    let journal = fs_err::read_to_string(dir.path().join("missing/journal.jsonl")).unwrap();
    let event: serde_json::Value = journal
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
        .find(|event| event["event"] == "image-pulled")
        .unwrap_or_else(|| panic!("no image-pulled event:\n{journal}"));
    assert_eq!(event["image"], image.as_str());
    assert!(event["digest"].as_str().unwrap().starts_with("sha256:"), "{event}");
    assert!(event["pull-us"].as_u64().unwrap() > 0, "{event}");
    let missing = report(&dir.path().join("missing"));
    assert_eq!(leftovers(missing["run-id"].as_str().unwrap()), Vec::<String>::new());
}

#[test]
fn an_unreachable_registry_fails_before_anything_starts() {
    let dir = tempfile::tempdir().unwrap();
    // A free port with nothing listening.
    let image = format!("127.0.0.1:{}/firedrill-test/nowhere:1", free_port());
    let file = scenario(dir.path(), &image);
    let started = instant_now();
    let output = run(&file, &dir.path().join("r"), &[]);
    let took = started.elapsed();
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&format!("error: cannot pull image `{image}`")), "{stderr}");
    assert!(stderr.contains("hint: is the registry reachable"), "{stderr}");
    assert!(
        took < firedrill::stack::PULL_STALL_TIMEOUT + Duration::from_secs(30),
        "took {took:?}, beyond the pull timeout"
    );
    let report = report(&dir.path().join("r"));
    assert_eq!(report["status"], "aborted");
    assert_eq!(leftovers(report["run-id"].as_str().unwrap()), Vec::<String>::new());
    let journal = fs_err::read_to_string(dir.path().join("r/journal.jsonl")).unwrap();
    assert!(!journal.contains("\"network-created\""), "nothing started:\n{journal}");
}
