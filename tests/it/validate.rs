//! `firedrill validate`: every file of the invalid corpus (`tests/scenarios/invalid/`, one mistake
//! per file, one file with several) is rejected with exit code 2 and the diagnostics snapshotted;
//! every valid example loads.
//!
//! Review snapshot changes with `cargo insta review`, or regenerate them with
//! `INSTA_UPDATE=always cargo test --test it validate`; never edit them by hand.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The real binary, run from the repository root (so paths in diagnostics are as given), colour off.
fn firedrill() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_firedrill"));
    command.current_dir(root()).env("NO_COLOR", "1").env_remove("FIREDRILL_LOG");
    command
}

/// The `.yaml` files of a corpus folder, relative to the repository root, sorted.
fn corpus(folder: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs_err::read_dir(root().join(folder))
        .expect("the corpus folder exists")
        .map(|entry| entry.expect("readable corpus entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .map(|path| Path::new(folder).join(path.file_name().expect("a file name")))
        .collect();
    files.sort();
    files
}

#[test]
fn invalid_scenarios_are_rejected_with_every_diagnostic() {
    let files = corpus("tests/scenarios/invalid");
    assert!(files.len() >= 15, "the invalid corpus has {} files", files.len());
    for file in files {
        let output =
            firedrill().arg("validate").arg(&file).output().expect("failed to run firedrill");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{}: exit code\n{stderr}", file.display());
        assert!(output.stdout.is_empty(), "{}: printed to stdout", file.display());
        let name = file.file_stem().expect("a file stem").to_string_lossy().into_owned();
        insta::with_settings!({
            snapshot_path => "snapshots",
            prepend_module_to_snapshot => false,
            input_file => root().join(&file),
            omit_expression => true,
        }, {
            insta::assert_snapshot!(name, format!("exit code: 2\n{stderr}"));
        });
    }
}

#[test]
fn several_mistakes_are_all_reported_in_order() {
    let path = root().join("tests/scenarios/invalid/several-mistakes.yaml");
    let Err(firedrill::scenario::LoadError::Invalid(invalid)) = firedrill::scenario::load(&path)
    else {
        panic!("several-mistakes.yaml must be invalid");
    };
    assert!(invalid.diagnostics.len() >= 10, "{invalid}");
    let positions: Vec<_> = invalid.diagnostics.iter().map(|d| (d.line, d.column)).collect();
    let mut sorted = positions.clone();
    sorted.sort();
    assert_eq!(positions, sorted, "diagnostics are in source order");
}

#[test]
fn valid_examples_load() {
    let mut files = corpus("tests/scenarios/valid");
    assert!(!files.is_empty());
    // `upgrade-on-tuesday.yaml` is invalid on purpose (tests/it/windows.rs).
    files.extend(
        corpus("scenarios").into_iter().filter(|f| !f.ends_with("upgrade-on-tuesday.yaml")),
    );
    for file in &files {
        if let Err(error) = firedrill::scenario::load(&root().join(file)) {
            match error {
                firedrill::scenario::LoadError::Invalid(invalid) => {
                    panic!("{}", firedrill::scenario::render(&invalid, false))
                }
                other => panic!("{other}"),
            }
        }
    }
    let output =
        firedrill().arg("validate").args(&files).output().expect("failed to run firedrill");
    assert_eq!(
        output.status.code(),
        Some(0),
        "firedrill validate failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// `--format github`: one workflow command per diagnostic on stdout, in the documented syntax
/// (`::error file=F,line=L,endLine=E,col=C,endColumn=D,title=T::MESSAGE`), the rendered text still
/// on stderr; exit 2.
#[test]
fn github_format_annotates_every_mistake_on_its_line() {
    let output = firedrill()
        .args(["validate", "--format", "github", "tests/scenarios/invalid/several-mistakes.yaml"])
        .output()
        .expect("failed to run firedrill");
    assert_eq!(output.status.code(), Some(2));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = stdout.lines().collect();
    let problems = stderr.matches("  × ").count();
    assert!(problems >= 2 && lines.len() == problems, "{stdout}\n{stderr}");
    for line in lines {
        let rest = line.strip_prefix("::error ").expect("an error command");
        let (properties, message) = rest.split_once("::").expect("properties::message");
        let keys: Vec<&str> =
            properties.split(',').map(|p| p.split_once('=').expect("key=value").0).collect();
        assert_eq!(keys, ["file", "line", "endLine", "col", "endColumn", "title"], "{line}");
        assert!(properties.starts_with("file=tests/scenarios/invalid/several-mistakes.yaml,"));
        assert!(!message.is_empty());
    }
}

/// `--format json`: one document on stdout with every file, nothing on stderr.
#[test]
fn json_format_lists_every_file() {
    let output = firedrill()
        .args(["validate", "--format", "json", "scenarios/smoke.yaml"])
        .arg("tests/scenarios/invalid/bad-duration.yaml")
        .arg("tests/scenarios/no-such-file.yaml")
        .output()
        .expect("failed to run firedrill");
    assert_eq!(output.status.code(), Some(2));
    assert!(output.stderr.is_empty(), "{}", String::from_utf8_lossy(&output.stderr));
    let document: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(document["format-version"], 1);
    let files = document["files"].as_array().expect("files");
    assert_eq!(files.len(), 3);
    assert_eq!(
        (files[0]["ok"].as_bool(), files[0]["scenario"].as_str()),
        (Some(true), Some("smoke"))
    );
    let bad = &files[1]["annotations"][0];
    assert_eq!(files[1]["ok"], false);
    assert_eq!((bad["line"].as_u64(), bad["column"].as_u64()), (Some(7), Some(11)));
    assert_eq!(bad["message"], "invalid duration `5 seconds`");
    assert_eq!(bad["level"], "error");
    let missing = &files[2]["annotations"][0];
    assert!(missing["line"].is_null());
    assert!(missing["message"].as_str().unwrap().starts_with("failed to read scenario"));
}
