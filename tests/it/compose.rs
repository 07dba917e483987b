//! Compose files as stacks (`stack.compose`) and `firedrill init`, against the real engine and the
//! real `docker-compose`: every fixture under `tests/compose/` is accepted by `docker-compose
//! config`, runs unedited under firedrill, and `firedrill init` on it writes a scenario that
//! passes; a SIGKILLed compose run's containers, network and volumes are all removed by `gc`;
//! the invalid compose corpus reports every mistake with the compose file's line and column.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::support::{
    demo_images, describe, firedrill, leftovers, rehearse, report, root, run_id_of, stack_lock,
    wait_for_journal_line,
};

/// Each fixture: its folder and its compose files in `-f` order.
const FIXTURES: &[(&str, &[&str])] = &[
    ("tests/compose/webcache", &["docker-compose.yml"]),
    ("tests/compose/billing", &["docker-compose.yml", "docker-compose.ci.yml"]),
    ("tests/compose/profiles", &["docker-compose.yml"]),
];

/// The webcache images are built by the compose file's `build:`; they start FROM the local base
/// image, which `firedrill images` (the demo images) makes.
fn images() {
    demo_images();
}

#[test]
fn fixtures_are_accepted_by_the_real_docker_compose() {
    // The fixtures must be checked by the real compose: Debian's `docker-compose`.
    crate::support::ensure_tool("docker-compose", "docker-compose");
    for (folder, files) in FIXTURES {
        let mut command = Command::new("docker-compose");
        command.current_dir(root().join(folder));
        for file in *files {
            command.args(["-f", file]);
        }
        let output = command.args(["config", "--quiet"]).output().expect("docker-compose runs");
        assert!(
            output.status.success(),
            "{folder}: docker-compose rejects it\n{}",
            describe(&output)
        );
    }
}

#[test]
fn fixtures_run_unedited() {
    let _serial = stack_lock();
    images();
    for (folder, _) in FIXTURES {
        let file = format!("{folder}/scenario.yaml");
        let run = rehearse(&file);
        assert_eq!(run.output.status.code(), Some(0), "{file}\n{}", describe(&run.output));
        assert_eq!(run.report["status"], "completed", "{file}");
    }
}

/// Remove `# ` from every example line (prose lines start with `## `).
fn uncomment(text: &str) -> String {
    text.lines()
        .map(|line| {
            let indent = line.len() - line.trim_start().len();
            match line.trim_start().strip_prefix("# ") {
                Some(rest) => format!("{}{rest}", &line[..indent]),
                None => line.to_owned(),
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn init(folder: &str, files: &[&str], output: &Path) -> std::process::Output {
    let mut command = firedrill();
    command.arg("init");
    for file in files {
        command.arg("--compose").arg(Path::new(folder).join(file));
    }
    command.arg("--output").arg(output).output().expect("firedrill init")
}

#[test]
fn init_writes_a_scenario_that_passes_and_examples_that_validate() {
    let _serial = stack_lock();
    images();
    for (folder, files) in FIXTURES {
        let dir = tempfile::tempdir().expect("tempdir");
        let scenario = dir.path().join("rehearsal.yaml");
        let output = init(folder, files, &scenario);
        assert_eq!(output.status.code(), Some(0), "{folder}\n{}", describe(&output));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("inferred:"), "{stderr}");
        assert!(stderr.contains("next: firedrill run"), "{stderr}");
        let text = fs_err::read_to_string(&scenario).expect("written");
        for family in ["kill:", "upgrade:", "start:"] {
            assert!(
                text.contains(&format!("#   {family}")) || text.contains(&format!("# - {family}")),
                "{folder}: no `{family}` example\n{text}"
            );
        }

        // Never overwrites.
        let again = init(folder, files, &scenario);
        assert_eq!(again.status.code(), Some(2), "{}", describe(&again));

        // The examples, uncommented, are a valid scenario.
        let examples = dir.path().join("examples.yaml");
        fs_err::write(&examples, uncomment(&text)).unwrap();
        let validated = firedrill().arg("validate").arg(&examples).output().unwrap();
        assert_eq!(
            validated.status.code(),
            Some(0),
            "{folder} examples:\n{}\n{}",
            uncomment(&text),
            describe(&validated)
        );

        // The scenario as written runs and passes.
        let reports = dir.path().join("report");
        let run =
            firedrill().args(["run", "--report"]).arg(&reports).arg(&scenario).output().unwrap();
        assert_eq!(run.status.code(), Some(0), "{folder}\n{text}\n{}", describe(&run));
        let report = report(&reports);
        assert_eq!(leftovers(report["run-id"].as_str().unwrap()), Vec::<String>::new());
    }
}

#[test]
fn init_on_the_webcache_fixture_infers_the_link_and_the_build() {
    let dir = tempfile::tempdir().expect("tempdir");
    let scenario = dir.path().join("s.yaml");
    let output = init("tests/compose/webcache", &["docker-compose.yml"], &scenario);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let text = fs_err::read_to_string(&scenario).unwrap();
    // `web` depends on `cache`, whose `expose`d 6379 is its port.
    assert!(text.contains("#   web-cache: web -> cache:6379"), "{text}");
    assert!(text.contains("#     service: web"), "{text}");
    assert!(text.contains("tag: firedrill-test/nginx:1.0-next"), "{text}");
    assert!(text.contains("  - healthy-throughout: { service: cache, step: settle }"), "{text}");
}

#[test]
fn a_sigkilled_compose_run_is_swept_by_gc_volumes_included() {
    let _serial = stack_lock();
    images();
    let dir = tempfile::tempdir().unwrap();
    let mut child = firedrill()
        .args(["run", "--report"])
        .arg(dir.path())
        .arg("tests/compose/billing/scenario.yaml")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("firedrill run");
    let run_id = run_id_of(dir.path());
    // Mid-run: the timeline has started, so the named volume and every container exist.
    wait_for_journal_line(dir.path(), Duration::from_secs(120), |v| v["event"] == "step-started");
    child.kill().unwrap(); // SIGKILL: no cleanup code runs.
    child.wait().unwrap();
    let left = leftovers(&run_id);
    let volume = format!("firedrill-{run_id}-pgdata");
    assert!(left.contains(&volume), "the run's named volume exists: {left:?}");

    let output = firedrill().arg("gc").output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    assert!(String::from_utf8_lossy(&output.stdout).contains(&volume), "{}", describe(&output));
    assert_eq!(leftovers(&run_id), Vec::<String>::new());
}

#[test]
fn invalid_compose_files_report_every_mistake_with_line_and_column() {
    let dir = PathBuf::from("tests/compose/invalid");
    let mut files: Vec<PathBuf> = fs_err::read_dir(root().join(&dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().ends_with("scenario.yaml")))
        .map(|p| dir.join(p.file_name().unwrap()))
        .collect();
    files.sort();
    assert!(!files.is_empty());
    for file in files {
        let output = firedrill().arg("validate").arg(&file).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
        let name = file.file_stem().unwrap().to_string_lossy().into_owned();
        insta::with_settings!({
            snapshot_path => "snapshots",
            prepend_module_to_snapshot => false,
            omit_expression => true,
        }, {
            insta::assert_snapshot!(format!("compose-{name}"), format!("exit code: 2\n{stderr}"));
        });
    }
}
