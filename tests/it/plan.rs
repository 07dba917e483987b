//! `firedrill plan`: every shipped scenario plans without a Docker engine (image presence then
//! `unknown`), invalid ones exit 2 like `validate`, and with the engine here the image column is
//! answered.

use crate::support::{firedrill, root};

fn scenarios() -> Vec<String> {
    let mut files: Vec<String> = fs_err::read_dir(root().join("scenarios"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .map(|path| format!("scenarios/{}", path.file_name().unwrap().to_string_lossy()))
        .collect();
    files.sort();
    files
}

#[test]
fn every_scenario_plans_without_docker() {
    let files = scenarios();
    assert!(files.len() >= 10, "{files:?}");
    let mut planned = 0;
    for file in &files {
        let valid = firedrill().args(["validate", file]).output().unwrap().status.success();
        for format in ["text", "json"] {
            let output = firedrill()
                .args(["plan", "--format", format, file])
                .env("DOCKER_HOST", "tcp://127.0.0.1:1")
                .output()
                .unwrap();
            let stdout = String::from_utf8_lossy(&output.stdout);
            let stderr = String::from_utf8_lossy(&output.stderr);
            if !valid {
                assert_eq!(output.status.code(), Some(2), "{file}: {stderr}");
                assert!(stdout.is_empty(), "{file}: {stdout}");
                continue;
            }
            assert_eq!(output.status.code(), Some(0), "{file} ({format}): {stderr}");
            assert!(stderr.contains("image presence is unknown"), "{file}: {stderr}");
            if format == "json" {
                let document: serde_json::Value = serde_json::from_str(&stdout).unwrap();
                let plan = &document["plans"][0];
                assert_eq!(plan["file"], file.as_str());
                let images = plan["images"].as_array().unwrap();
                assert!(!images.is_empty(), "{file}");
                assert!(images.iter().all(|i| i["present"] == "unknown"), "{file}: {images:?}");
                let steps = plan["timeline"].as_array().unwrap();
                let offsets: Vec<u64> = steps
                    .iter()
                    .filter(|s| s["depth"] == 0)
                    .map(|s| s["offset-ms"].as_u64().unwrap())
                    .collect();
                assert!(offsets.windows(2).all(|w| w[0] <= w[1]), "{file}: {offsets:?}");
                planned += 1;
            } else {
                assert!(stdout.contains("bring-up (in order"), "{file}: {stdout}");
                assert!(stdout.contains("present: unknown"), "{file}: {stdout}");
            }
        }
    }
    assert!(planned >= 10, "{planned} scenarios planned");
}

/// With the engine on this machine, every image is answered `present` or `missing`.
#[test]
fn with_an_engine_the_image_column_is_answered() {
    let output =
        firedrill().args(["plan", "--format", "json", "scenarios/smoke.yaml"]).output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    let document: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let images = document["plans"][0]["images"].as_array().unwrap().clone();
    assert!(!images.is_empty());
    assert!(
        images.iter().all(|i| i["present"] == "present" || i["present"] == "missing"),
        "{images:?}"
    );
}
