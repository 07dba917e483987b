//! `junit.xml`: the runs as JUnit XML for CI (written with `quick-junit`, nextest's writer).
//!
//! One `<testsuite>` per scenario, one `<testcase>` per check (`name` = the check's name,
//! `classname` = the scenario's name):
//! - a passed check is a success whose `<system-out>` holds what held and the evidence;
//! - a failed check is a `<failure>` whose `type` is the check's kind, `message` its summary and
//!   text expected vs observed with the evidence (times from the run's start);
//! - a check that could not be evaluated did not hold either: a `<failure type="not-evaluated">`;
//! - an aborted run adds an `<error type="aborted">` case named after the failed phase, and an
//!   interrupted one an `<error type="interrupted">` case, so CI shows why nothing was judged.
//!
//! The suite's `<system-out>` is the verdict summary with the key figures. The output validates
//! against the Jenkins JUnit schema (`tests/fixtures/junit-10.xsd`, the one the Jenkins xUnit
//! plugin checks files against).

use std::fmt::Write as _;
use std::time::Duration;

use quick_junit::{NonSuccessKind, Property, TestCase, TestCaseStatus, TestSuite};

use super::figures::{KeyFigures, key_figures};
use super::json::{CheckReport, Ending, Report, RunStatus, render_summary_text};
use super::record::RunRecord;
use super::text::{self, duration, offset};
use crate::checks::CheckStatus;

/// Render `junit.xml` for one or several runs.
pub fn render_junit(runs: &[RunRecord]) -> String {
    let mut report = quick_junit::Report::new("firedrill");
    let total_ms: u64 = runs.iter().map(|run| run.report.duration_ms).sum();
    report.set_time(Duration::from_millis(total_ms));
    for run in runs {
        report.add_test_suite(suite(run));
    }
    let xml = report.to_string().expect("writing XML into memory cannot fail");
    without_testsuites_skipped(xml)
}

fn suite(run: &RunRecord) -> TestSuite {
    let report = &run.report;
    let mut suite = TestSuite::new(&report.scenario.name);
    suite.set_time(Duration::from_millis(report.duration_ms));
    if let Some(started) = report.started_at {
        suite.extra.insert("timestamp".into(), format!("{started:.3}").into());
    }
    suite.add_property(Property::new("scenario-file", &report.scenario.file));
    if let Some(run_id) = &report.run_id {
        suite.add_property(Property::new("run-id", run_id));
    }
    suite.add_property(Property::new("status", status_key(report.status)));
    suite.add_property(Property::new("firedrill-version", &report.firedrill_version));
    if let Some(case) = run_error_case(report) {
        suite.add_test_case(case);
    }
    for check in &report.checks {
        suite.add_test_case(check_case(report, check));
    }
    let mut out = render_summary_text(report, false);
    out.push_str(&figures_text(report, &key_figures(&run.events)));
    suite.set_system_out(out);
    suite
}

fn check_case(report: &Report, check: &CheckReport) -> TestCase {
    let status = match check.status {
        CheckStatus::Passed => TestCaseStatus::success(),
        CheckStatus::Failed | CheckStatus::NotEvaluated => {
            let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
            let kind = if check.status == CheckStatus::Failed {
                check.kind.as_str()
            } else {
                "not-evaluated"
            };
            status.set_type(kind).set_message(&check.summary).set_description(details(check));
            status
        }
    };
    let mut case = TestCase::new(&check.name, status);
    case.set_classname(&report.scenario.name);
    if check.status == CheckStatus::Passed {
        case.set_system_out(details(check));
    }
    case
}

/// What a check rests on, in plain text.
fn details(check: &CheckReport) -> String {
    let mut out = format!(
        "{} ({})\nexpected: {}\nobserved: {}\n",
        text::check_word(check.status),
        check.kind,
        check.expected,
        check.observed
    );
    if !check.channels.is_empty() {
        out.push_str("per channel:\n");
        for timing in &check.channels {
            let [channel, reference, arrived, limit, result] = text::timing_cells(timing);
            let _ = writeln!(
                out,
                "  {channel}: {result} ({limit}; arrived {arrived}; clock from {reference})"
            );
        }
    }
    if !check.evidence.is_empty() {
        out.push_str("evidence (from the run's start):\n");
        for evidence in &check.evidence {
            let _ = writeln!(
                out,
                "  {:>10}  #{:<4} {}",
                offset(evidence.offset_us),
                evidence.seq,
                evidence.note
            );
        }
    }
    out
}

/// The error case of a run that did not get to judge everything.
fn run_error_case(report: &Report) -> Option<TestCase> {
    let (name, ty, message, description) = match report.status {
        RunStatus::Aborted => {
            let failed = report.phases.iter().find(|p| p.outcome == Ending::Failed);
            let phase = failed.map_or("run", |p| text::phase_key(p.phase));
            let error = report.error.clone().unwrap_or_else(|| "the run failed".into());
            let first = error.lines().next().unwrap_or_default().to_owned();
            (format!("phase {phase}"), "aborted", first, error)
        }
        RunStatus::Interrupted => {
            let stopped = report
                .phases
                .iter()
                .find(|p| matches!(p.outcome, Ending::Interrupted | Ending::NotFinished))
                .or(report.phases.last());
            let during = stopped.map_or("before any phase".to_owned(), |p| {
                format!("during phase {}", text::phase_key(p.phase))
            });
            let message = format!(
                "the run was interrupted {during}, {} after it started",
                duration(report.duration_ms * 1_000)
            );
            ("run interrupted".to_owned(), "interrupted", message.clone(), message)
        }
        RunStatus::Completed | RunStatus::Deviated => return None,
    };
    let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
    status.set_type(ty).set_message(message).set_description(description);
    let mut case = TestCase::new(name, status);
    case.set_classname(&report.scenario.name);
    Some(case)
}

/// Key figures as plain text lines, for the suite's `<system-out>`.
fn figures_text(report: &Report, figures: &KeyFigures) -> String {
    let mut out = String::new();
    for fault in &figures.faults {
        let _ = write!(out, "fault `{}` at {}:", fault.step, offset(fault.started_us));
        if fault.outages.is_empty() {
            out.push_str(" no service became unhealthy");
        }
        for (i, outage) in fault.outages.iter().enumerate() {
            let _ = write!(
                out,
                "{} `{}` unhealthy after {}",
                if i == 0 { "" } else { ";" },
                outage.service,
                duration(outage.detected_after_us)
            );
            match outage.unhealthy_for_us {
                Some(us) => {
                    let _ = write!(out, " for {}", duration(us));
                }
                None => out.push_str(", never healthy again"),
            }
            if let Some(us) = outage.healthy_after_clear_us {
                let _ = write!(out, ", healthy {} after the fault was cleared", duration(us));
            }
        }
        out.push('\n');
    }
    for upgrade in &figures.upgrades {
        let _ = write!(
            out,
            "upgrade `{}` of `{}` at {}: {}; time to detect {}, to roll back {}, to restore {}",
            upgrade.step,
            upgrade.service,
            offset(upgrade.started_us),
            text::upgrade_word(upgrade.outcome),
            text::maybe_duration(upgrade.time_to_detect_us),
            text::maybe_duration(upgrade.time_to_roll_back_us),
            text::maybe_duration(upgrade.time_to_restore_us)
        );
        for (traffic, used) in text::error_budget(upgrade) {
            let _ = write!(out, "; error budget of `{traffic}` used: {used}");
        }
        out.push('\n');
    }
    for traffic in &figures.traffic {
        let _ = write!(
            out,
            "traffic `{}`: {} requests, {} failed, availability {}%, p50 {}, p95 {}",
            traffic.traffic,
            traffic.requests,
            traffic.failed,
            traffic.availability_percent,
            text::maybe_duration(traffic.p50_latency_us),
            text::maybe_duration(traffic.p95_latency_us)
        );
        if let Some(writes) = &traffic.writes {
            let _ = write!(
                out,
                ", {} of {} acknowledged writes lost",
                writes.lost, writes.acknowledged
            );
        }
        out.push('\n');
    }
    if !report.phases.is_empty() {
        let phases: Vec<String> = report
            .phases
            .iter()
            .map(|p| match p.duration_ms {
                Some(ms) => format!("{} {}", text::phase_key(p.phase), duration(ms * 1_000)),
                None => format!("{} not finished", text::phase_key(p.phase)),
            })
            .collect();
        let _ = writeln!(out, "phases: {}", phases.join(", "));
    }
    if let Some(timing) = &report.timing {
        let _ = writeln!(
            out,
            "harness overhead: {} of {} ({}%)",
            duration(timing.overhead_ms * 1_000),
            duration(timing.total_ms * 1_000),
            timing.overhead_percent
        );
    }
    out
}

fn status_key(status: RunStatus) -> &'static str {
    match status {
        RunStatus::Completed => "completed",
        RunStatus::Deviated => "deviated",
        RunStatus::Aborted => "aborted",
        RunStatus::Interrupted => "interrupted",
    }
}

/// quick-junit always writes `skipped` on `<testsuites>`, which the Jenkins JUnit schema does not
/// allow there (only on `<testsuite>`). firedrill never skips a check (one that could not be
/// evaluated is a failure), so the count is always 0 and is left out.
fn without_testsuites_skipped(xml: String) -> String {
    let Some(start) = xml.find("<testsuites") else { return xml };
    let Some(length) = xml[start..].find('>') else { return xml };
    let tag = &xml[start..start + length];
    let cleaned = tag.replacen(" skipped=\"0\"", "", 1);
    format!("{}{cleaned}{}", &xml[..start], &xml[start + length..])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixtures;
    use crate::report::xsd::Schema;

    /// Snapshots `text` with the firedrill version masked, so releases do not churn snapshots.
    fn assert_versionless(name: &str, text: &str) {
        insta::with_settings!({ filters => vec![
            (r#"name="firedrill-version" value="[^"]+""#, r#"name="firedrill-version" value="[version]""#),
        ]}, {
            insta::assert_snapshot!(name, text);
        });
    }

    #[test]
    fn junit_names_each_late_channel() {
        let xml = render_junit(&[fixtures::notified()]);
        assert!(xml.contains("per channel:\n  email: 1m17.7s to spare (deadline 1m30s; arrived +32.3s (12.3s after); clock from `kill billing` started at +20s)"), "{xml}");
        assert!(xml.contains("  sms: 4.2s late (deadline 1m30s;"), "{xml}");
        assert!(xml.contains("  sms to +15550001: 4.2s late"), "{xml}");
        assert!(
            xml.contains("  chat: 5.5s short (lead time 20s; arrived +1.5s (14.5s before)"),
            "{xml}"
        );
    }

    #[test]
    fn junit_of_a_completed_run() {
        assert_versionless("junit_completed", &render_junit(&[fixtures::completed()]));
    }

    #[test]
    fn junit_of_a_deviated_run() {
        let xml = render_junit(&[fixtures::deviated()]);
        assert!(xml.contains(r#"<failure message="still unhealthy 1s after `pause db` ended"#));
        assert!(xml.contains("billing recovers &lt;fast&gt; &amp; &quot;soon&quot;"), "escaped");
        assert_versionless("junit_deviated", &xml);
    }

    #[test]
    fn junit_of_an_aborted_run() {
        let xml = render_junit(&[fixtures::aborted()]);
        assert!(xml.contains(r#"<testcase name="phase bring-up" classname="checkout">"#));
        assert!(xml.contains(r#"type="aborted""#));
        assert_eq!(xml.matches(r#"type="not-evaluated""#).count(), 6);
        assert_versionless("junit_aborted", &xml);
    }

    #[test]
    fn junit_of_an_interrupted_and_a_crashed_run() {
        let xml = render_junit(&[fixtures::interrupted(), fixtures::crashed()]);
        assert_eq!(xml.matches("<testsuite ").count(), 2);
        assert_eq!(xml.matches(r#"type="interrupted""#).count(), 2);
        assert_versionless("junit_interrupted_and_crashed", &xml);
    }

    /// The Jenkins JUnit schema the xUnit plugin enforces, read from the real `.xsd` file.
    fn jenkins_schema() -> Schema {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/junit-10.xsd");
        Schema::load(std::path::Path::new(path)).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Every fixture run, rendered together.
    fn every_run() -> String {
        render_junit(&[
            fixtures::completed(),
            fixtures::deviated(),
            fixtures::aborted(),
            fixtures::interrupted(),
            fixtures::crashed(),
        ])
    }

    /// The violations the schema finds in `xml`, which must be rejected.
    fn rejected(schema: &Schema, xml: &str) -> String {
        match schema.validate(xml) {
            Ok(()) => panic!("accepted, but violates the schema:\n{xml}"),
            Err(errors) => errors.join("\n"),
        }
    }

    #[test]
    fn junit_validates_against_the_jenkins_schema() {
        let schema = jenkins_schema();
        let xml = every_run();
        schema.validate(&xml).unwrap_or_else(|errors| panic!("{}\n{xml}", errors.join("\n")));
        for run in [fixtures::upgraded(), fixtures::notified()] {
            let xml = render_junit(&[run]);
            schema.validate(&xml).unwrap_or_else(|errors| panic!("{}\n{xml}", errors.join("\n")));
        }
    }

    /// The schema check can fail: a junit.xml broken in each way the schema constrains is
    /// rejected, with the line and the reason.
    #[test]
    fn the_jenkins_schema_rejects_what_it_forbids() {
        let schema = jenkins_schema();
        let xml = every_run();
        let first_case = r#"<testcase name="steady-state before""#;
        assert!(xml.contains(first_case), "{xml}");
        // An element the schema does not declare.
        let errors =
            rejected(&schema, &xml.replacen("<system-out>", "<stdout-log/><system-out>", 1));
        assert!(errors.contains("`<stdout-log>` is not declared"), "{errors}");
        // A content model (sequence / choice): a testcase directly under testsuites.
        let errors = rejected(
            &schema,
            &xml.replacen("<testsuite ", "<testcase name=\"stray\"/><testsuite ", 1),
        );
        assert!(errors.contains("`<testsuites>`: its children (testcase, testsuite"), "{errors}");
        assert!(errors.contains("do not match its content model (testsuite*)"), "{errors}");
        // A content model (choice): a testsuite inside a testcase.
        let errors = rejected(
            &schema,
            &xml.replacen("</testcase>", "<testsuite tests=\"0\"/></testcase>", 1),
        );
        assert!(errors.contains("`<testcase>`: its children ("), "{errors}");
        // A required attribute: a testcase without its name, a testsuite without `tests`.
        let errors = rejected(&schema, &xml.replacen(first_case, "<testcase", 1));
        assert!(errors.contains("`<testcase>` lacks the required attribute `name`"), "{errors}");
        let errors =
            rejected(&schema, &xml.replacen(r#" tests="4" skipped="0""#, r#" skipped="0""#, 1));
        assert!(errors.contains("`<testsuite>` lacks the required attribute `tests`"), "{errors}");
        // An attribute the schema does not declare.
        let errors =
            rejected(&schema, &xml.replacen(first_case, r#"<testcase retries="1" name="x""#, 1));
        assert!(
            errors.contains("`<testcase>` has no attribute `retries` in the schema"),
            "{errors}"
        );
        // A simple type (`system-out` is xs:string): no child element, no attribute.
        let errors = rejected(&schema, &xml.replacen("<system-out>", "<system-out><b/>", 1));
        assert!(errors.contains("has simple content (xs:string) but contains `<b>`"), "{errors}");
        let errors =
            rejected(&schema, &xml.replacen("<system-out>", "<system-out kind=\"log\">", 1));
        assert!(errors.contains("`<system-out>` has simple content and no attribute `kind`"));
        // Text where the type is not mixed.
        let errors = rejected(&schema, &xml.replacen("<testsuite ", "loose text<testsuite ", 1));
        assert!(errors.contains("`<testsuites>` is not mixed but contains text"), "{errors}");
        // A root the schema does not declare at top level, and XML that is not well-formed.
        let errors = rejected(&schema, "<report/>");
        assert!(errors.contains("`<report>` is not declared as a top-level element"), "{errors}");
        let errors = rejected(&schema, &xml.replacen("</testcase>", "</testsuite>", 1));
        assert!(errors.contains("not well-formed"), "{errors}");
    }

    /// The interpreter's bounds and order, on a schema that has finite ones (the Jenkins schema's
    /// only bounds are `0..unbounded`), and its simple types.
    #[test]
    fn occurrence_bounds_order_and_simple_types_are_enforced() {
        let schema = Schema::parse(
            r#"<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">
                 <xs:element name="run"><xs:complexType>
                   <xs:sequence>
                     <xs:element ref="head"/>
                     <xs:choice minOccurs="1" maxOccurs="2">
                       <xs:element ref="a"/>
                       <xs:sequence><xs:element ref="b" minOccurs="2" maxOccurs="3"/></xs:sequence>
                     </xs:choice>
                   </xs:sequence>
                   <xs:attribute name="rate" type="xs:decimal" use="required"/>
                   <xs:attribute name="count" type="xs:int"/>
                   <xs:attribute name="ok" type="xs:boolean"/>
                 </xs:complexType></xs:element>
                 <xs:element name="head" type="xs:string"/>
                 <xs:element name="a" type="xs:integer"/>
                 <xs:element name="b"><xs:complexType/></xs:element>
               </xs:schema>"#,
        )
        .unwrap();
        let doc = |attributes: &str, children: &str| format!("<run {attributes}>{children}</run>");
        let fine = [
            doc(r#"rate="1.5""#, "<head/><a>7</a>"),
            doc(r#"rate="-.5" count="3" ok="true""#, "<head>x</head><a>1</a><a>+2</a>"),
            doc(r#"rate="2""#, "<head/><b/><b/>"),
            doc(r#"rate="2""#, "<head/><b/><b/><b/><a>0</a>"),
        ];
        for xml in &fine {
            schema.validate(xml).unwrap_or_else(|e| panic!("{xml}: {e:?}"));
        }
        let broken = [
            (doc(r#"rate="1""#, "<a>1</a><head/>"), "do not match"), // order
            (doc(r#"rate="1""#, "<head/>"), "do not match"),         // choice minOccurs 1
            (doc(r#"rate="1""#, "<head/><a>1</a><a>2</a><a>3</a>"), "do not match"), // maxOccurs 2
            (doc(r#"rate="1""#, "<head/><b/>"), "do not match"),     // b minOccurs 2
            (doc(r#"rate="1""#, "<head/><b/><b/><b/><b/><b/><b/><b/>"), "do not match"),
            (doc("", "<head/><a>1</a>"), "lacks the required attribute `rate`"),
            (doc(r#"rate="fast""#, "<head/><a>1</a>"), "is not a valid xs:decimal"),
            (doc(r#"rate="1" count="1e3""#, "<head/><a>1</a>"), "is not a valid xs:int"),
            (doc(r#"rate="1" count="99999999999""#, "<head/><a>1</a>"), "is not a valid xs:int"),
            (doc(r#"rate="1" ok="yes""#, "<head/><a>1</a>"), "is not a valid xs:boolean"),
            (doc(r#"rate="1""#, "<head/><a>one</a>"), "is not a valid xs:integer"),
            (doc(r#"rate="1""#, "<head/><b>text</b><b/>"), "is not mixed"),
        ];
        for (xml, reason) in &broken {
            let errors = rejected(&schema, xml);
            assert!(errors.contains(reason), "{xml}: {errors}");
        }
    }

    #[test]
    fn a_schema_construct_it_does_not_interpret_is_an_error_not_a_pass() {
        let unknown = [
            r#"<xs:schema><xs:element name="a"><xs:complexType><xs:all/></xs:complexType></xs:element></xs:schema>"#,
            r#"<xs:schema><xs:element name="a" type="xs:dateTime"/></xs:schema>"#,
            r#"<xs:schema><xs:simpleType name="t"/></xs:schema>"#,
            r#"<xs:schema><xs:element name="a"><xs:complexType><xs:sequence><xs:element ref="b"/></xs:sequence></xs:complexType></xs:element></xs:schema>"#,
        ];
        for xsd in unknown {
            assert!(Schema::parse(xsd).is_err(), "{xsd}");
        }
    }

    #[test]
    fn the_root_carries_no_skipped_count() {
        let xml = render_junit(&[fixtures::completed()]);
        let root = xml.lines().find(|line| line.starts_with("<testsuites")).unwrap();
        assert_eq!(
            root,
            r#"<testsuites name="firedrill" tests="4" failures="0" errors="0" time="12.100">"#
        );
    }

    #[test]
    fn every_prefix_renders() {
        let run = fixtures::deviated();
        for end in 0..=run.events.len() {
            let scenario = fixtures::scenario(fixtures::CHECKOUT, "scenarios/checkout.yaml");
            render_junit(&[fixtures::record(&scenario, run.events[..end].to_vec())]);
        }
    }
}
