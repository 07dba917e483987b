//! Reading acknowledged writes back: an acknowledged write the service no longer has is a lost
//! write.

use std::time::Duration;

use futures_util::StreamExt;
use indexmap::{IndexMap, IndexSet};

use super::ports::{PortCache, PortResolver};
use super::request;
use crate::clock;
use crate::journal::{EventKind, Journal};
use crate::scenario::model::Traffic;

/// Read-backs in flight at once.
const CONCURRENCY: usize = 16;

/// Tries per id before its read-back counts as unknown.
const TRIES: u32 = 3;

/// Pause before the second try; doubled before the third.
const RETRY_PAUSE: Duration = Duration::from_millis(100);

/// What the read-back found, as recorded in `writes-verified`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WritesVerifiedSummary {
    /// Distinct acknowledged ids.
    pub acknowledged: u64,
    /// Of those, read back with the expected status.
    pub found: u64,
    /// Ids the service answered 404 for: lost writes.
    pub lost: Vec<String>,
    /// Ids whose read-back failed otherwise on every try (another status, no answer): not
    /// counted as lost, because nothing proves they are gone.
    pub unknown: Vec<String>,
}

enum ReadBack {
    /// The expected status, with the body.
    Found(Vec<u8>),
    Lost,
    Unknown,
}

/// Read every acknowledged id back with `GET` on the stream's `read-path` (`{id}` replaced), at
/// most 16 at once, and record `writes-verified`.
///
/// The expected status means found; 404 means lost; anything else (another status, a timeout, a
/// connection failure) is tried up to 3 times and then counts as unknown. Duplicate ids are read
/// once. Without `verify-writes` in `spec` there is no read path, so every id is unknown. Each
/// read is bounded by the stream's request timeout; dropping the future stops every read.
pub async fn verify_writes(
    spec: &Traffic,
    ids: &[String],
    resolve: PortResolver,
    journal: &Journal,
    http: &reqwest::Client,
) -> WritesVerifiedSummary {
    let distinct: IndexSet<&str> = ids.iter().map(String::as_str).collect();
    let writes: Vec<(String, Option<serde_json::Value>)> =
        distinct.into_iter().map(|id| (id.to_owned(), None)).collect();
    verify_writes_against(spec, &writes, 0, resolve, journal, http).await
}

/// [`verify_writes`] for acknowledged writes with the record the service answered for each
/// (from [`TrafficStats::records`](super::TrafficStats)). Each distinct id is read once; each
/// write under it is found when the answer agrees with its record on every field both have.
/// Another record under the same id means the acknowledged write is lost: a table rebuilt by a
/// destructive migration restarts its ids, and the old ids then hold new records. Writes without
/// a record are judged by status only. `acknowledged` counts writes, not distinct ids.
pub async fn verify_writes_against(
    spec: &Traffic,
    writes: &[(String, Option<serde_json::Value>)],
    unverifiable: u64,
    resolve: PortResolver,
    journal: &Journal,
    http: &reqwest::Client,
) -> WritesVerifiedSummary {
    let mut by_id: IndexMap<&str, Vec<Option<&serde_json::Value>>> = IndexMap::new();
    for (id, record) in writes {
        by_id.entry(id.as_str()).or_default().push(record.as_ref());
    }
    let mut summary = WritesVerifiedSummary {
        acknowledged: writes.len() as u64,
        ..WritesVerifiedSummary::default()
    };
    match &spec.verify_writes {
        None => summary.unknown = writes.iter().map(|(id, _)| id.clone()).collect(),
        Some(verify) => {
            let written: Option<serde_json::Value> =
                spec.request.body.as_deref().and_then(|body| serde_json::from_str(body).ok());
            let ports = PortCache::new(resolve, spec.timeout);
            let outcomes: Vec<ReadBack> = futures_util::stream::iter(by_id.keys())
                .map(|id| {
                    let path = request::read_path(&verify.read_path, id);
                    read_back(http, &ports, path, verify.status, spec.timeout)
                })
                .buffered(CONCURRENCY)
                .collect()
                .await;
            for ((id, records), outcome) in by_id.iter().zip(outcomes) {
                for record in records {
                    match (&outcome, record) {
                        (ReadBack::Found(body), Some(record))
                            if !same_record(record, written.as_ref(), body) =>
                        {
                            summary.lost.push((*id).to_owned());
                        }
                        (ReadBack::Found(_), _) => summary.found += 1,
                        (ReadBack::Lost, _) => summary.lost.push((*id).to_owned()),
                        (ReadBack::Unknown, _) => summary.unknown.push((*id).to_owned()),
                    }
                }
            }
        }
    }
    journal.record(EventKind::WritesVerified {
        traffic: spec.name.clone(),
        acknowledged: summary.acknowledged,
        found: summary.found,
        lost: summary.lost.clone(),
        unknown: summary.unknown.clone(),
        unverifiable,
    });
    summary
}

async fn read_back(
    http: &reqwest::Client,
    ports: &PortCache,
    path: String,
    expected: u16,
    timeout: Duration,
) -> ReadBack {
    let mut pause = RETRY_PAUSE;
    for attempt in 1..=TRIES {
        if attempt > 1 {
            clock::sleep(pause).await;
            pause *= 2;
        }
        let deadline = clock::instant_now() + timeout;
        let Ok(Ok(lease)) = tokio::time::timeout_at(deadline, ports.get()).await else {
            continue;
        };
        match request::fetch(http, "GET", lease.port, &path, None, deadline, timeout).await {
            Ok(answer) if answer.status == expected => return ReadBack::Found(answer.body),
            Ok(answer) if answer.status == 404 => return ReadBack::Lost,
            Ok(_) => {}
            Err(failure) => {
                if failure.connection {
                    ports.connection_failed(lease).await;
                }
            }
        }
    }
    ReadBack::Unknown
}

/// Whether `body` is a JSON object that shows the acknowledged `record`: it shares at least one
/// field with it (`{}` shows nothing), agrees with it on every field both have, and has every
/// field the client wrote (the request's JSON `written`) that the record echoed, with the
/// record's value. Other fields only one side has are fine: a rolled-back version may not
/// return a field the new one added (`currency`), and a new one may add fields.
fn same_record(
    record: &serde_json::Value,
    written: Option<&serde_json::Value>,
    body: &[u8],
) -> bool {
    let Some(record) = record.as_object() else { return true };
    let Ok(serde_json::Value::Object(read)) = serde_json::from_slice::<serde_json::Value>(body)
    else {
        return false;
    };
    let shared = record.keys().any(|key| read.contains_key(key));
    let agrees = record.iter().all(|(key, value)| read.get(key).is_none_or(|read| read == value));
    let written_kept = written.and_then(serde_json::Value::as_object).is_none_or(|written| {
        written.keys().filter(|key| record.contains_key(*key)).all(|key| read.contains_key(key))
    });
    shared && agrees && written_kept
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::scenario::model::VerifyWrites;
    use crate::traffic::test_server::{
        TestServer, fixed_port, handler, journal, keep_time_moving, sent, traffic,
    };
    use crate::traffic::{http_client, start};

    /// `POST /invoices` creates invoice n with id `n` (even n) or `"inv-n"` (odd n); request 8
    /// is acknowledged without an id. `GET /invoices/{id}`: 4 and inv-5 are gone (404), 6 always
    /// fails (500), 2 answers an empty record `{}` (nothing of the write), the rest are there.
    fn invoices(reads_of_6: Arc<AtomicUsize>) -> crate::traffic::test_server::Handler {
        let created = Arc::new(AtomicUsize::new(0));
        handler(move |request| {
            let created = created.clone();
            let reads_of_6 = reads_of_6.clone();
            async move {
                match (request.method.as_str(), request.path.as_str()) {
                    ("POST", "/invoices") => {
                        assert_eq!(request.body, r#"{"amount":10}"#);
                        let n = created.fetch_add(1, Ordering::SeqCst);
                        let body = match n {
                            8 => r#"{"created":true}"#.to_owned(),
                            n if n % 2 == 0 => format!(r#"{{"id":{n},"amount":10}}"#),
                            n => format!(r#"{{"id":"inv-{n}","amount":10}}"#),
                        };
                        (201, body)
                    }
                    ("GET", "/invoices/4" | "/invoices/inv-5") => (404, "{}".to_owned()),
                    ("GET", "/invoices/2") => (200, "{}".to_owned()),
                    ("GET", "/invoices/6") => {
                        reads_of_6.fetch_add(1, Ordering::SeqCst);
                        (500, "{}".to_owned())
                    }
                    ("GET", _) => (200, r#"{"amount":10}"#.to_owned()),
                    _ => (405, "{}".to_owned()),
                }
            }
        })
    }

    fn writes_spec() -> Traffic {
        let mut spec = traffic(100.0, 4);
        spec.name = "invoices".to_owned();
        spec.request.method = "POST".to_owned();
        spec.request.path = "/invoices".to_owned();
        spec.request.body = Some(r#"{"amount":10}"#.to_owned());
        spec.request.status = 201;
        spec.verify_writes = Some(VerifyWrites {
            id_field: "id".to_owned(),
            read_path: "/invoices/{id}".to_owned(),
            status: 200,
        });
        spec
    }

    #[tokio::test(start_paused = true)]
    async fn acknowledged_writes_are_collected_and_lost_ones_reported() {
        let _ticker = keep_time_moving();
        let reads_of_6 = Arc::new(AtomicUsize::new(0));
        let server = TestServer::start(invoices(reads_of_6.clone())).await;
        let spec = writes_spec();
        let journal = journal();
        let handle = start(&spec, fixed_port(server.port), journal.clone(), http_client());
        clock::sleep(Duration::from_millis(45)).await;
        let so_far = handle.acknowledged_writes();
        assert_eq!(so_far, ["0", "inv-1", "2", "inv-3", "4"]);
        clock::sleep(Duration::from_millis(50)).await;
        let stats = handle.stop().await;

        assert_eq!((stats.sent, stats.ok), (10, 10));
        assert_eq!(stats.writes, ["0", "inv-1", "2", "inv-3", "4", "inv-5", "6", "inv-7", "inv-9"]);
        let without_id = &sent(&journal)[8];
        assert!(without_id.ok && without_id.write_id.is_none());
        assert_eq!(without_id.error.as_deref(), Some("unverifiable write: the answer has no `id`"));
        assert_eq!(stats.unverifiable, 1);
        assert_eq!(sent(&journal)[1].write_id.as_deref(), Some("inv-1"));

        let summary = verify_writes_against(
            &spec,
            &stats.records,
            stats.unverifiable,
            fixed_port(server.port),
            &journal,
            &http_client(),
        )
        .await;
        // `{}` under id 2 shares no field with the acknowledged record: not a match.
        assert_eq!(
            summary,
            WritesVerifiedSummary {
                acknowledged: 9,
                found: 5,
                lost: vec!["2".to_owned(), "4".to_owned(), "inv-5".to_owned()],
                unknown: vec!["6".to_owned()],
            }
        );
        assert_eq!(reads_of_6.load(Ordering::SeqCst), 3, "three tries before unknown");
        let recorded = journal.snapshot().last().unwrap().kind.clone();
        assert_eq!(
            recorded,
            EventKind::WritesVerified {
                traffic: "invoices".to_owned(),
                acknowledged: 9,
                found: 5,
                lost: vec!["2".to_owned(), "4".to_owned(), "inv-5".to_owned()],
                unknown: vec!["6".to_owned()],
                unverifiable: 1,
            }
        );
    }

    #[tokio::test(start_paused = true)]
    async fn read_backs_are_bounded_to_16_at_once_and_read_each_id_once() {
        let _ticker = keep_time_moving();
        let now = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let paths = Arc::new(Mutex::new(Vec::new()));
        let (now2, most2, paths2) = (now.clone(), most.clone(), paths.clone());
        let server = TestServer::start(handler(move |request| {
            let (now, most, paths) = (now2.clone(), most2.clone(), paths2.clone());
            async move {
                let at_once = now.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(at_once, Ordering::SeqCst);
                paths.lock().unwrap().push(request.path);
                clock::sleep(Duration::from_millis(20)).await;
                now.fetch_sub(1, Ordering::SeqCst);
                (200, "{}".to_owned())
            }
        }))
        .await;
        let mut ids: Vec<String> = (0..50).map(|n| n.to_string()).collect();
        ids.push("7".to_owned());
        ids.push("a/b".to_owned());
        let summary = verify_writes(
            &writes_spec(),
            &ids,
            fixed_port(server.port),
            &journal(),
            &http_client(),
        )
        .await;
        assert_eq!((summary.acknowledged, summary.found), (51, 51));
        assert_eq!(most.load(Ordering::SeqCst), 16);
        let paths = paths.lock().unwrap();
        assert_eq!(paths.len(), 51);
        assert!(paths.contains(&"/invoices/a%2Fb".to_owned()));
    }

    #[tokio::test(start_paused = true)]
    async fn an_unreachable_service_leaves_every_write_unknown_not_lost() {
        let _ticker = keep_time_moving();
        let resolve = PortResolver::new(|| {
            Box::pin(async { Err("service `billing` is not running".to_owned()) })
        });
        let ids = vec!["1".to_owned(), "2".to_owned()];
        let summary =
            verify_writes(&writes_spec(), &ids, resolve, &journal(), &http_client()).await;
        assert_eq!(summary.found, 0);
        assert!(summary.lost.is_empty());
        assert_eq!(summary.unknown, ids);
    }

    #[test]
    fn a_read_back_must_hold_the_acknowledged_record_not_another_one_with_its_id() {
        let acknowledged = serde_json::json!({"id": 1, "customer": "acme", "created_at": "2026-11-28T10:00:00.000001Z"});
        let same = br#"{"id":1,"customer":"acme","created_at":"2026-11-28T10:00:00.000001Z","currency":"EUR"}"#;
        let reused = br#"{"id":1,"customer":"acme","created_at":"2026-11-28T10:05:00.000002Z"}"#;
        assert!(same_record(&acknowledged, None, same), "extra fields in the read-back are fine");
        let older = br#"{"id":1,"created_at":"2026-11-28T10:00:00.000001Z"}"#;
        assert!(
            same_record(&acknowledged, None, older),
            "fields the reader does not return are fine"
        );
        assert!(!same_record(&acknowledged, None, reused), "same id, another record");
        assert!(!same_record(&acknowledged, None, b"not json"));
    }

    #[test]
    fn a_read_back_must_share_the_written_fields() {
        let acknowledged = serde_json::json!({"id": 1, "customer": "acme", "amount": 10});
        let written = serde_json::json!({"customer": "acme", "amount": 10});
        assert!(!same_record(&acknowledged, Some(&written), b"{}"), "`{{}}` shows nothing");
        assert!(!same_record(&acknowledged, None, b"{}"), "`{{}}` shows nothing");
        assert!(
            !same_record(&acknowledged, Some(&written), br#"{"id":1}"#),
            "the written fields are missing"
        );
        assert!(
            !same_record(&acknowledged, Some(&written), br#"{"id":1,"customer":"acme"}"#),
            "`amount` was written and acknowledged, and is missing"
        );
        assert!(same_record(
            &acknowledged,
            Some(&written),
            br#"{"id":1,"customer":"acme","amount":10}"#
        ));
        let echoed_less = serde_json::json!({"id": 1, "customer": "acme"});
        assert!(
            same_record(&echoed_less, Some(&written), br#"{"id":1,"customer":"acme"}"#),
            "a written field the service never echoed is not asked for"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn of_two_writes_acknowledged_under_one_id_only_the_one_still_there_is_found() {
        let _ticker = keep_time_moving();
        // Id 1 now holds the record written after a destructive migration restarted the ids.
        let server = TestServer::start(handler(|_request| async {
            (200, r#"{"id":1,"created_at":"10:05"}"#.to_owned())
        }))
        .await;
        let writes = vec![
            ("1".to_owned(), Some(serde_json::json!({"id": 1, "created_at": "10:00"}))),
            ("1".to_owned(), Some(serde_json::json!({"id": 1, "created_at": "10:05"}))),
        ];
        let summary = verify_writes_against(
            &writes_spec(),
            &writes,
            0,
            fixed_port(server.port),
            &journal(),
            &http_client(),
        )
        .await;
        assert_eq!((summary.acknowledged, summary.found), (2, 1));
        assert_eq!(summary.lost, ["1"]);
    }
}
