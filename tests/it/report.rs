//! `firedrill report DIR` on journals from real runs kept in `tests/fixtures/journals/` (no
//! Docker): complete, cut short mid-line, several scenarios in one folder, a journal from before
//! `scenario-loaded`; and one real `firedrill run --report` whose four reports must validate and
//! re-render byte for byte.
//!
//! `junit.xml` is validated against the real Jenkins JUnit schema vendored in
//! `tests/fixtures/junit-10.xsd`, read and interpreted in Rust (`src/report/xsd.rs`; no external
//! tool), so `cargo test` needs nothing the README's first command does not.

use std::path::{Path, PathBuf};
use std::process::Output;

use crate::support::{demo_images, describe, firedrill, leftovers, report, root, stack_lock};

/// A journal fixture's text.
fn journal(name: &str) -> String {
    fs_err::read_to_string(root().join("tests/fixtures/journals").join(name))
        .expect("the journal fixture exists")
}

/// A report folder holding `text` as `journal.jsonl` (in `sub`, when given).
fn report_dir(dir: &Path, sub: Option<&str>, text: &str) -> PathBuf {
    let folder = sub.map_or_else(|| dir.to_owned(), |sub| dir.join(sub));
    fs_err::create_dir_all(&folder).unwrap();
    fs_err::write(folder.join("journal.jsonl"), text).unwrap();
    folder
}

fn render(dir: &Path) -> Output {
    firedrill().arg("report").arg(dir).output().expect("failed to run firedrill report")
}

#[path = "../../src/report/xsd.rs"]
mod xsd;

/// Validate `junit.xml` against the Jenkins JUnit schema (the real `.xsd`).
fn assert_valid_junit(path: &Path) {
    let schema = xsd::Schema::load(&root().join("tests/fixtures/junit-10.xsd"))
        .unwrap_or_else(|error| panic!("{error}"));
    if let Err(errors) = schema.validate(&read(path)) {
        panic!("{} does not validate against junit-10.xsd:\n{}", path.display(), errors.join("\n"));
    }
}

fn read(path: &Path) -> String {
    fs_err::read_to_string(path).unwrap_or_else(|e| panic!("{e}"))
}

/// Every check of `report.json` appears in the HTML, and the HTML has its timeline.
fn assert_html_covers(html: &str, report: &serde_json::Value) {
    assert!(html.contains("<svg class=\"timeline\""), "the HTML has a timeline");
    assert!(!html.contains("<script"), "the HTML needs no JavaScript");
    for check in report["checks"].as_array().unwrap() {
        let name = check["name"].as_str().unwrap().replace('"', "&quot;");
        assert!(html.contains(&format!("<h4>{name}</h4>")), "check {name} is in the HTML");
    }
}

#[test]
fn report_renders_every_file_from_a_journal() {
    let dir = tempfile::tempdir().unwrap();
    report_dir(dir.path(), None, &journal("db-pause.jsonl"));
    let output = render(dir.path());
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.starts_with("db-pause: PASSED (5/5 checks passed)"), "{stdout}");
    let report = report(dir.path());
    assert_eq!(report["status"], "completed");
    assert_eq!(report["checks"].as_array().unwrap().len(), 5);
    assert_valid_junit(&dir.path().join("junit.xml"));
    let summary = read(&dir.path().join("summary.md"));
    assert!(summary.starts_with("## ✅ firedrill `db-pause`: PASSED\n"), "{summary}");
    assert!(summary.contains("| ✅ passed | unhealthy-during billing during \"pause db\" |"));
    assert!(summary.contains("| `pause db` at +4.307s | `db` | 182ms |"), "{summary}");
    assert_html_covers(&read(&dir.path().join("report.html")), &report);
    let stderr = String::from_utf8_lossy(&output.stderr);
    for file in ["report.json", "junit.xml", "summary.md", "report.html"] {
        assert!(stderr.contains(&format!("{file}\n")), "{file} is listed: {stderr}");
    }
}

#[test]
fn report_renders_a_journal_cut_short_mid_line() {
    let dir = tempfile::tempdir().unwrap();
    let full = journal("db-pause.jsonl");
    // The first 30 lines (up to billing seen unhealthy while db is paused) and half of the next.
    let lines: Vec<&str> = full.lines().collect();
    let mut cut = lines[..30].join("\n");
    cut.push('\n');
    cut.push_str(&lines[30][..lines[30].len() / 2]);
    report_dir(dir.path(), None, &cut);
    let output = render(dir.path());
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("stops before `run-ended`"), "{stderr}");
    let report = report(dir.path());
    assert_eq!(report["status"], "interrupted");
    assert!(report.get("timing").is_none());
    let statuses: Vec<&str> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        ["passed", "passed", "passed", "not-evaluated", "not-evaluated"],
        "what the journal settles is judged, the rest is not evaluated"
    );
    let junit = dir.path().join("junit.xml");
    assert_valid_junit(&junit);
    let xml = read(&junit);
    assert!(xml.contains(r#"type="interrupted""#), "{xml}");
    assert_eq!(xml.matches(r#"type="not-evaluated""#).count(), 2, "{xml}");
    let html = read(&dir.path().join("report.html"));
    assert!(html.contains(">INTERRUPTED<"));
    assert_html_covers(&html, &report);
}

#[test]
fn several_runs_in_one_folder_make_one_set_of_combined_reports() {
    let dir = tempfile::tempdir().unwrap();
    let smoke = report_dir(dir.path(), Some("smoke"), &journal("smoke.jsonl"));
    let db_pause = report_dir(dir.path(), Some("db-pause"), &journal("db-pause.jsonl"));
    let output = render(dir.path());
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    assert_eq!(report(&smoke)["scenario"]["name"], "smoke");
    assert_eq!(report(&db_pause)["scenario"]["name"], "db-pause");
    let junit = dir.path().join("junit.xml");
    assert_valid_junit(&junit);
    let xml = read(&junit);
    // In the order the runs started (db-pause ran first), whatever the folder names.
    let suites: Vec<&str> =
        xml.lines().filter(|l| l.trim_start().starts_with("<testsuite ")).collect();
    assert_eq!(suites.len(), 2, "{xml}");
    assert!(suites[0].contains(r#"name="db-pause""#) && suites[1].contains(r#"name="smoke""#));
    let summary = read(&dir.path().join("summary.md"));
    assert!(summary.starts_with("# firedrill: PASSED (2 of 2 scenarios passed)\n"), "{summary}");
    let html = read(&dir.path().join("report.html"));
    assert_eq!(html.matches("<svg class=\"timeline\"").count(), 2);
    assert!(!dir.path().join("report.json").exists(), "report.json stays per scenario");
}

#[test]
fn a_journal_without_its_expectations_rereads_the_scenario_file_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    report_dir(dir.path(), None, &journal("smoke-without-scenario-loaded.jsonl"));
    let output = render(dir.path());
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("predates `scenario-loaded`"), "{stderr}");
    assert!(stderr.contains("`scenarios/smoke.yaml`"), "{stderr}");
    assert_eq!(report(dir.path())["counts"]["passed"], 4);

    // The same journal, naming a scenario file that is gone: a clear error, nothing rendered.
    let gone = journal("smoke-without-scenario-loaded.jsonl")
        .replace("scenarios/smoke.yaml", "scenarios/gone.yaml");
    let dir = tempfile::tempdir().unwrap();
    report_dir(dir.path(), None, &gone);
    let output = render(dir.path());
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("does not carry its expectations"), "{stderr}");
    assert!(stderr.contains("scenarios/gone.yaml"), "{stderr}");
    assert!(stderr.contains("\nhint: "), "{stderr}");
    assert!(!dir.path().join("report.html").exists());
}

#[test]
fn a_folder_without_a_journal_is_an_error_with_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    let output = render(dir.path());
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.starts_with("error: no `journal.jsonl` in "), "{stderr}");
    assert!(stderr.contains("hint: pass the folder given to `firedrill run --report DIR`"));
}

#[test]
fn a_real_run_writes_four_valid_reports_that_rerender_identically() {
    demo_images();
    let _stack = stack_lock();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("reports");
    let step_summary = dir.path().join("step-summary.md");
    let output = firedrill()
        .args(["run", "--report"])
        .arg(&out)
        .arg("scenarios/db-pause.yaml")
        .env("GITHUB_STEP_SUMMARY", &step_summary)
        .output()
        .expect("failed to run firedrill");
    // The verdict depends on the machine's timing; the reports must exist and be sound either way.
    assert!(matches!(output.status.code(), Some(0 | 1)), "{}", describe(&output));
    let files = ["report.json", "junit.xml", "summary.md", "report.html"];
    let first: Vec<String> = files.iter().map(|f| read(&out.join(f))).collect();
    assert_valid_junit(&out.join("junit.xml"));
    assert_html_covers(&first[3], &report(&out));
    assert_eq!(read(&step_summary), format!("{}\n", first[2]), "the job summary gets summary.md");

    let output = render(&out);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    for (file, before) in files.iter().zip(&first) {
        assert_eq!(&read(&out.join(file)), before, "{file} renders the same from the journal");
    }
}

/// `--repeat 2`: two runs on fresh stacks (two run ids, nothing left of either), one folder
/// each, and a stability summary on stdout, in `stability.json` and atop `summary.md` that agrees
/// with what each run's own `report.json` says; the exit code follows it.
#[test]
fn repeat_runs_the_scenario_on_fresh_stacks_and_reports_stability() {
    demo_images();
    let _stack = stack_lock();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("reports");
    let output = firedrill()
        .args(["run", "--repeat", "2", "--seed", "7", "--report"])
        .arg(&out)
        .arg("scenarios/smoke.yaml")
        .output()
        .expect("failed to run firedrill");
    assert!(matches!(output.status.code(), Some(0 | 1)), "{}", describe(&output));
    let runs = [report(&out.join("run-1")), report(&out.join("run-2"))];
    let ids: Vec<String> = runs.iter().map(|r| r["run-id"].as_str().unwrap().to_owned()).collect();
    assert_ne!(ids[0], ids[1], "each repetition is a run of its own");
    for (run, id) in runs.iter().zip(&ids) {
        assert_eq!(run["seed"], 7, "every repetition replays the same seed");
        assert!(leftovers(id).is_empty(), "run {id} left {:?}", leftovers(id));
    }
    let stability: serde_json::Value =
        serde_json::from_str(&read(&out.join("stability.json"))).unwrap();
    assert_eq!(stability["format-version"], 1);
    let smoke = &stability["scenarios"][0];
    assert_eq!((smoke["scenario"].as_str(), smoke["runs"].as_u64()), (Some("smoke"), Some(2)));
    assert_eq!(smoke["run-ids"], serde_json::json!(ids));
    let checks = smoke["checks"].as_array().unwrap();
    assert_eq!(checks.len(), runs[0]["checks"].as_array().unwrap().len());
    let mut every_check_held = true;
    for (i, check) in checks.iter().enumerate() {
        let passed_in: Vec<u64> = (0..2u64)
            .filter(|&r| runs[r as usize]["checks"][i]["status"] == "passed")
            .map(|r| r + 1)
            .collect();
        assert_eq!(check["name"], runs[0]["checks"][i]["name"]);
        assert_eq!(check["passed"].as_u64(), Some(passed_in.len() as u64), "{check}");
        let differed: Vec<u64> = check["differed"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["run"].as_u64().unwrap())
            .collect();
        assert_eq!(differed.len() + passed_in.len(), 2, "{check}");
        every_check_held &= passed_in.len() == 2;
    }
    assert_eq!(smoke["stable"], every_check_held);
    assert_eq!(output.status.code(), Some(if every_check_held { 0 } else { 1 }));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let word = if every_check_held { "STABLE" } else { "NOT STABLE" };
    assert!(stdout.contains(&format!("stability of smoke: {word} over 2 runs")), "{stdout}");
    let summary = read(&out.join("summary.md"));
    assert!(summary.starts_with("## "), "the stability section opens summary.md: {summary}");
    assert!(summary.contains("Stability of `smoke`"), "{summary}");
    assert_valid_junit(&out.join("junit.xml"));
}
