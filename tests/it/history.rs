//! The run history end to end: real runs of the webcache stack recorded and listed, a slower
//! release tripping the regression gate, a SIGKILLed run imported by `firedrill report`, and the
//! trend page looked at in a real headless browser.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use firedrill::checks::CheckStatus;
use firedrill::history::{Better, Figure, History, Origin, RunEntry, Unit, VerdictEntry};
use firedrill::report::{Counts, RunStatus};

use crate::support::{
    describe, ensure_tool, firedrill, leftovers, run_id_of, stack_lock, wait_for_journal_line,
};

const RELEASE_1: &str = "tests/scenarios/webcache/release-1.yaml";
const RELEASE_2_SLOW: &str = "tests/scenarios/webcache/release-2-slow.yaml";

fn history_json(history: &Path) -> serde_json::Value {
    let output = firedrill()
        .args(["history", "--json", "--history"])
        .arg(history)
        .output()
        .expect("firedrill history");
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    serde_json::from_slice(&output.stdout).expect("history --json is JSON")
}

/// Two runs of a release recorded and shown by `history`; the second gated against the first
/// passes; a release whose nginx starts 3 s slower fails the gate with exit 1, naming the figure,
/// both values and both runs.
#[test]
fn runs_are_recorded_and_a_slower_release_trips_the_gate() {
    let _stack = stack_lock();
    let dir = tempfile::tempdir().unwrap();
    let history = dir.path().join("history.sqlite");
    let gate = ["--baseline", "last-pass", "--max-regression", "50%", "--regression-floor", "1s"];
    let run = |file: &str, gated: bool| {
        let mut command = firedrill();
        command.arg("run").arg("--history").arg(&history);
        if gated {
            command.args(gate);
        }
        command.arg(file).output().expect("firedrill run")
    };

    let first = run(RELEASE_1, true);
    assert_eq!(first.status.code(), Some(0), "{}", describe(&first));
    let stdout = String::from_utf8_lossy(&first.stdout);
    assert!(stdout.contains("gate: no earlier passing run of `webcache-release`"), "{stdout}");
    let second = run(RELEASE_1, true);
    assert_eq!(second.status.code(), Some(0), "{}", describe(&second));
    assert!(String::from_utf8_lossy(&second.stdout).contains("  gate: passed: "));

    let listed = history_json(&history);
    let runs = listed["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2, "{listed:#}");
    for run in runs {
        assert_eq!(run["scenario"], "webcache-release");
        assert_eq!(run["status"], "completed");
        assert_eq!(run["origin"], "run");
        assert_eq!(run["counts"]["passed"], 2);
        assert_eq!(leftovers(run["run-id"].as_str().unwrap()), Vec::<String>::new());
        let names: Vec<&str> = run["figures"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["name"].as_str().unwrap())
            .collect();
        for figure in ["unhealthy-for (kill web: web)", "healthy-after-clear (kill web: web)"] {
            assert!(names.contains(&figure), "{figure} in {names:?}");
        }
        // This repository is a git checkout: the run carries its commit.
        assert_eq!(run["git-commit"].as_str().map(str::len), Some(40), "{run:#}");
    }
    let (first_id, second_id) =
        (runs[0]["run-id"].as_str().unwrap(), runs[1]["run-id"].as_str().unwrap());

    let slower = run(RELEASE_2_SLOW, true);
    assert_eq!(
        slower.status.code(),
        Some(1),
        "the checks pass, the gate fails: {}",
        describe(&slower)
    );
    let stdout = String::from_utf8_lossy(&slower.stdout);
    assert!(stdout.contains("PASSED (2/2 checks passed)"), "{stdout}");
    let slow_id = history_json(&history)["runs"][2]["run-id"].as_str().unwrap().to_owned();
    let line = stdout
        .lines()
        .find(|l| l.contains("`healthy-after-clear (kill web: web)` regressed: "))
        .unwrap_or_else(|| panic!("the gate names the figure: {stdout}"));
    assert!(line.contains(&format!(" in {slow_id} against ")), "{line}");
    assert!(line.contains(&format!(" in baseline {second_id} (")), "{line}");
    assert!(line.contains("at most 50% allowed"), "{line}");
    assert!(stdout.contains("gate: FAILED: "), "{stdout}");

    // The table lists all three, oldest first; a run id baseline of another scenario is refused
    // before anything runs.
    let table = firedrill()
        .args(["history", "--scenario", "webcache-release", "--history"])
        .arg(&history)
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&table.stdout);
    let ids: Vec<&str> =
        table.lines().skip(1).filter_map(|l| l.split_whitespace().nth(2)).collect();
    assert_eq!(ids, [first_id, second_id, slow_id.as_str()], "{table}");
    let refused = firedrill()
        .args(["run", "--baseline", "fd-nope", "--history"])
        .arg(&history)
        .arg(RELEASE_1)
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2), "{}", describe(&refused));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.starts_with("error: baseline run `fd-nope` is not in the history `"),
        "{stderr}"
    );
    assert!(stderr.contains("\nhint: "), "{stderr}");
}

/// A run SIGKILLed mid-way records nothing and leaves the history sound; `firedrill report DIR`
/// imports it as interrupted, once.
#[test]
fn a_killed_run_is_imported_by_report() {
    let _stack = stack_lock();
    let dir = tempfile::tempdir().unwrap();
    let history = dir.path().join("history.sqlite");
    let reports = dir.path().join("reports");
    // One run recorded first, so the file exists while the next one dies.
    let mut child = firedrill()
        .args(["run", "--report"])
        .arg(&reports)
        .arg("--history")
        .arg(&history)
        .arg(RELEASE_1)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("firedrill run");
    let run_id = run_id_of(&reports);
    wait_for_journal_line(&reports, Duration::from_secs(60), |v| {
        v["event"] == "step-started" && v["step"] == "web down"
    });
    child.kill().unwrap(); // SIGKILL: no cleanup code runs.
    child.wait().unwrap();
    let gc = firedrill().args(["gc", "--run", &run_id]).output().unwrap();
    assert!(gc.status.success(), "{}", describe(&gc));
    assert_eq!(leftovers(&run_id), Vec::<String>::new());
    assert_eq!(history_json(&history)["runs"], serde_json::json!([]));

    for expected in ["history: imported", "is in"] {
        let output = firedrill()
            .arg("report")
            .arg(&reports)
            .arg("--history")
            .arg(&history)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(&format!("{expected} ")), "{stderr}");
    }
    let runs = history_json(&history)["runs"].clone();
    assert_eq!(runs.as_array().unwrap().len(), 1, "imported once: {runs:#}");
    assert_eq!(runs[0]["run-id"], run_id.as_str());
    assert_eq!(runs[0]["status"], "interrupted");
    assert_eq!(runs[0]["origin"], "imported");
    assert!(runs[0]["git-commit"].is_null(), "an import does not guess the commit");
    assert_eq!(History::open(&history).unwrap().integrity_check().unwrap(), "ok");
}

fn run_entry(n: i64, restore_ms: f64, version: &str) -> RunEntry {
    RunEntry {
        run_id: format!("fd-{n:04}"),
        scenario: "release".into(),
        scenario_file: "scenarios/release.yaml".into(),
        started_at: Some(jiff::Timestamp::from_second(1_800_000_000 + n * 3_600).unwrap()),
        duration_ms: 30_000,
        status: RunStatus::Completed,
        origin: Origin::Run,
        git_commit: None,
        versions: [("billing".to_owned(), version.to_owned())].into(),
        counts: Counts { passed: 1, failed: 0, not_evaluated: 0 },
        verdicts: vec![VerdictEntry {
            name: "restored".into(),
            kind: "restored".into(),
            status: CheckStatus::Passed,
            summary: "restored".into(),
        }],
        figures: vec![
            Figure {
                name: "time-to-restore (upgrade billing)".into(),
                value: restore_ms,
                unit: Unit::Ms,
                better: Better::Lower,
            },
            Figure {
                name: "availability (checkout)".into(),
                value: 99.0 - n as f64 * 0.1,
                unit: Unit::Percent,
                better: Better::Higher,
            },
        ],
        report_dir: None,
        seed: None,
        firedrill_version: "0.1.0".into(),
    }
}

/// Pixels of `png` within a small distance of `rgb`.
fn count_colour(png: &Png, rgb: [u8; 3]) -> usize {
    png.pixels().filter(|p| p.iter().zip(rgb).all(|(a, b)| a.abs_diff(b) <= 24)).count()
}

/// `trend --html` opened in Chromium: the page parses into one SVG plot per figure, and a
/// screenshot shows the series lines, the release markers and the regression's red point.
#[test]
fn the_trend_page_renders_its_plots_in_a_headless_browser() {
    ensure_tool("chromium-headless-shell", "chromium-headless-shell");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.sqlite");
    let mut history = History::open(&path).unwrap();
    for n in 0..12 {
        let version = if n < 6 { "2.0" } else { "2.1" };
        // Release 2.1's second run restores three times slower: a regression.
        let restore = if n == 7 { 3_600.0 } else { 1_200.0 + n as f64 * 10.0 };
        history.record(&run_entry(n, restore, version)).unwrap();
    }
    drop(history);
    let page = dir.path().join("trend.html");
    let output = firedrill()
        .args(["trend", "--history"])
        .arg(&path)
        .arg("--html")
        .arg(&page)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));

    let url = format!("file://{}", page.display());
    let browser = |extra: &[&str]| {
        let output = std::process::Command::new("chromium-headless-shell")
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--hide-scrollbars",
                "--window-size=1000,900",
            ])
            .args(extra)
            .arg(&url)
            .output()
            .expect("chromium-headless-shell");
        assert!(output.status.success(), "{}", describe(&output));
        output
    };
    let dom = String::from_utf8(browser(&["--dump-dom"]).stdout).unwrap();
    assert_eq!(dom.matches("<svg class=\"plot\"").count(), 2, "{dom}");
    assert_eq!(dom.matches("<polyline class=\"series\"").count(), 2);
    assert_eq!(dom.matches("class=\"point regression\"").count(), 1);

    let shot = dir.path().join("trend.png");
    browser(&[&format!("--screenshot={}", shot.display())]);
    let png = Png::decode(&fs_err::read(&shot).unwrap());
    assert_eq!((png.width, png.height), (1000, 900));
    let series = count_colour(&png, [0x25, 0x63, 0xeb]);
    let release = count_colour(&png, [0x7c, 0x3a, 0xed]);
    let regression = count_colour(&png, [0xc9, 0x3c, 0x3c]);
    assert!(series > 2_000, "the series lines and points are drawn: {series} px");
    assert!(release > 200, "the release markers are drawn: {release} px");
    assert!(regression > 50, "the regression point is drawn: {regression} px");
}

/// Just enough PNG (8-bit RGB or RGBA, not interlaced: what Chromium writes) to count colours.
struct Png {
    width: usize,
    height: usize,
    channels: usize,
    data: Vec<u8>,
}

impl Png {
    fn decode(bytes: &[u8]) -> Png {
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "a PNG");
        let (mut at, mut header, mut compressed) = (8, None, Vec::new());
        while at + 8 <= bytes.len() {
            let length = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
            let kind = &bytes[at + 4..at + 8];
            let body = &bytes[at + 8..at + 8 + length];
            match kind {
                b"IHDR" => header = Some(body.to_vec()),
                b"IDAT" => compressed.extend_from_slice(body),
                _ => {}
            }
            at += 12 + length;
        }
        let header = header.expect("IHDR");
        let width = u32::from_be_bytes(header[0..4].try_into().unwrap()) as usize;
        let height = u32::from_be_bytes(header[4..8].try_into().unwrap()) as usize;
        assert_eq!((header[8], header[12]), (8, 0), "8-bit, not interlaced");
        let channels = match header[9] {
            2 => 3,
            6 => 4,
            other => panic!("colour type {other}"),
        };
        let raw = miniz_oxide::inflate::decompress_to_vec_zlib(&compressed).expect("zlib");
        let stride = width * channels;
        let mut data = vec![0u8; stride * height];
        for row in 0..height {
            let filter = raw[row * (stride + 1)];
            let line = &raw[row * (stride + 1) + 1..(row + 1) * (stride + 1)];
            for i in 0..stride {
                let left = if i >= channels { data[row * stride + i - channels] } else { 0 };
                let up = if row > 0 { data[(row - 1) * stride + i] } else { 0 };
                let up_left = if row > 0 && i >= channels {
                    data[(row - 1) * stride + i - channels]
                } else {
                    0
                };
                let predicted = match filter {
                    0 => 0,
                    1 => left,
                    2 => up,
                    3 => ((left as u16 + up as u16) / 2) as u8,
                    4 => {
                        let p = left as i16 + up as i16 - up_left as i16;
                        let (pa, pb, pc) = (
                            (p - left as i16).abs(),
                            (p - up as i16).abs(),
                            (p - up_left as i16).abs(),
                        );
                        if pa <= pb && pa <= pc {
                            left
                        } else if pb <= pc {
                            up
                        } else {
                            up_left
                        }
                    }
                    other => panic!("filter {other}"),
                };
                data[row * stride + i] = line[i].wrapping_add(predicted);
            }
        }
        Png { width, height, channels, data }
    }

    fn pixels(&self) -> impl Iterator<Item = &[u8]> {
        self.data.chunks(self.channels).map(|p| &p[..3])
    }
}
