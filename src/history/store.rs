//! The history database: one SQLite file (`STATE/history.sqlite` by default), versioned schema
//! migrations, and safe concurrent writers.
//!
//! - **Migrations** are numbered SQL batches; `PRAGMA user_version` holds how many have run. Opening
//!   a file runs the missing ones in one `BEGIN IMMEDIATE` transaction (so two processes opening
//!   an old file at once migrate it once), and refuses a file written by a newer firedrill.
//! - **Concurrency**: WAL mode (readers never block the writer) and a busy timeout, so runs ending
//!   at the same moment queue for the write lock instead of failing; each run is recorded in one
//!   immediate transaction, so a reader sees a run whole or not at all.
//! - **Crashes**: a transaction that was not committed when the process died is rolled back the
//!   next time the file is opened; nothing half-written is ever read.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::entry::{Better, Figure, Origin, RunEntry, Unit, VerdictEntry};
use crate::checks::CheckStatus;
use crate::report::{Counts, RunStatus};

/// The schema version this firedrill writes: the number of [`MIGRATIONS`].
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// The migrations, in order; `user_version` N means the first N ran. Never edit one that shipped:
/// add the next.
const MIGRATIONS: [&str; 2] = [
    // 1: runs, their checks and their key figures.
    "CREATE TABLE runs (
        id INTEGER PRIMARY KEY,
        run_id TEXT NOT NULL UNIQUE,
        scenario TEXT NOT NULL,
        scenario_file TEXT NOT NULL,
        started_at TEXT,
        started_ms INTEGER,
        duration_ms INTEGER NOT NULL,
        status TEXT NOT NULL,
        git_commit TEXT,
        versions TEXT NOT NULL DEFAULT '{}',
        passed INTEGER NOT NULL,
        failed INTEGER NOT NULL,
        not_evaluated INTEGER NOT NULL,
        seed INTEGER,
        firedrill_version TEXT NOT NULL
    );
    CREATE INDEX runs_by_scenario ON runs (scenario, started_ms, id);
    CREATE TABLE verdicts (
        run INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        position INTEGER NOT NULL,
        name TEXT NOT NULL,
        kind TEXT NOT NULL,
        status TEXT NOT NULL,
        summary TEXT NOT NULL,
        PRIMARY KEY (run, position)
    ) WITHOUT ROWID;
    CREATE TABLE figures (
        run INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        position INTEGER NOT NULL,
        name TEXT NOT NULL,
        value REAL NOT NULL,
        unit TEXT NOT NULL,
        better TEXT NOT NULL,
        PRIMARY KEY (run, position)
    ) WITHOUT ROWID;",
    // 2: where a run came from (imported from a report folder or recorded as it ended) and the
    // folder its reports went to.
    "ALTER TABLE runs ADD COLUMN origin TEXT NOT NULL DEFAULT 'run';
    ALTER TABLE runs ADD COLUMN report_dir TEXT;",
];

/// How long a writer waits for another one's transaction before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Errors opening, reading or writing the history.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// The file or its folder could not be created or opened.
    #[error("failed to open the history `{}`", path.display())]
    Open {
        /// The database file.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The file was written by a newer firedrill.
    #[error(
        "the history `{}` has schema version {found}; this firedrill knows up to {known}",
        path.display()
    )]
    Newer {
        /// The database file.
        path: PathBuf,
        /// Its `user_version`.
        found: u32,
        /// [`SCHEMA_VERSION`].
        known: u32,
    },
    /// A query failed.
    #[error("failed to {doing} the history `{}`", path.display())]
    Sql {
        /// The database file.
        path: PathBuf,
        /// `read` or `write to`.
        doing: &'static str,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
}

impl HistoryError {
    /// A one-line hint, when there is a likely fix.
    pub fn hint(&self) -> Option<String> {
        match self {
            HistoryError::Newer { .. } => Some(
                "use the firedrill that wrote it, or give another file with `--history PATH`"
                    .into(),
            ),
            HistoryError::Sql { source, .. }
                if source.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy) =>
            {
                Some("another process held the history's write lock for 30s; try again".into())
            }
            HistoryError::Open { .. } | HistoryError::Sql { .. } => Some(
                "choose another file with `--history PATH`, or skip recording with `--no-history`"
                    .into(),
            ),
        }
    }
}

/// Whether [`History::record`] added the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// Added.
    Added,
    /// A run with this id is in the history already (recorded when it ended, or imported
    /// before); nothing changed.
    AlreadyThere,
}

/// Which runs to read.
#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    /// Only this scenario's runs.
    pub scenario: Option<String>,
    /// Only the latest N (still returned oldest first).
    pub last: Option<usize>,
    /// Leave `verdicts` empty: `trend` needs the figures only, and reading 4 checks per run
    /// back cost it about a third of its time over 10,000 runs.
    pub without_checks: bool,
}

/// An open history file.
#[derive(Debug)]
pub struct History {
    connection: Connection,
    path: PathBuf,
}

impl History {
    /// Open (creating the file and its folder when missing) and migrate to [`SCHEMA_VERSION`].
    pub fn open(path: &Path) -> Result<History, HistoryError> {
        let open_error = |source: Box<dyn std::error::Error + Send + Sync>| HistoryError::Open {
            path: path.to_owned(),
            source,
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs_err::create_dir_all(parent).map_err(|e| open_error(Box::new(e)))?;
        }
        let connection = Connection::open(path).map_err(|e| open_error(Box::new(e)))?;
        let mut history = History { connection, path: path.to_owned() };
        history.configure().map_err(|e| open_error(Box::new(e)))?;
        history.migrate()?;
        Ok(history)
    }

    /// Open an existing file; `None` when there is none (nothing was recorded there yet).
    pub fn open_existing(path: &Path) -> Result<Option<History>, HistoryError> {
        if !path.exists() {
            return Ok(None);
        }
        History::open(path).map(Some)
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn configure(&mut self) -> rusqlite::Result<()> {
        self.connection.busy_timeout(BUSY_TIMEOUT)?;
        let mode: String =
            self.connection
                .pragma_update_and_check(None, "journal_mode", "wal", |row| row.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!("the history `{}` is in {mode} mode, not WAL", self.path.display());
        }
        // In WAL mode, NORMAL loses no committed transaction when the process dies (only on a
        // power cut), and keeps each run's commit cheap.
        self.connection.pragma_update(None, "synchronous", "NORMAL")?;
        self.connection.pragma_update(None, "foreign_keys", true)?;
        Ok(())
    }

    fn user_version(connection: &Connection) -> rusqlite::Result<u32> {
        connection.pragma_query_value(None, "user_version", |row| row.get(0))
    }

    fn migrate(&mut self) -> Result<(), HistoryError> {
        let sql = |source| HistoryError::Sql { path: self.path.clone(), doing: "migrate", source };
        let found = History::user_version(&self.connection).map_err(sql)?;
        if found == SCHEMA_VERSION {
            return Ok(());
        }
        if found > SCHEMA_VERSION {
            return Err(HistoryError::Newer {
                path: self.path.clone(),
                found,
                known: SCHEMA_VERSION,
            });
        }
        let path = self.path.clone();
        let sql = |source| HistoryError::Sql { path: path.clone(), doing: "migrate", source };
        let transaction = self
            .connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql)?;
        // Another process may have migrated while this one waited for the lock.
        let found = History::user_version(&transaction).map_err(sql)?;
        if found > SCHEMA_VERSION {
            return Err(HistoryError::Newer { path, found, known: SCHEMA_VERSION });
        }
        for migration in &MIGRATIONS[found as usize..] {
            transaction.execute_batch(migration).map_err(sql)?;
        }
        transaction.pragma_update(None, "user_version", SCHEMA_VERSION).map_err(sql)?;
        transaction.commit().map_err(sql)
    }

    /// Record a run in one transaction; a run id that is there already is left as it is.
    pub fn record(&mut self, run: &RunEntry) -> Result<Recorded, HistoryError> {
        let path = self.path.clone();
        let sql = |source| HistoryError::Sql { path: path.clone(), doing: "write to", source };
        let transaction = self
            .connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql)?;
        let exists = transaction
            .query_row("SELECT 1 FROM runs WHERE run_id = ?1", [&run.run_id], |_| Ok(()))
            .optional()
            .map_err(sql)?
            .is_some();
        if exists {
            return Ok(Recorded::AlreadyThere);
        }
        let versions = serde_json::to_string(&run.versions).unwrap_or_else(|_| "{}".into());
        transaction
            .execute(
                "INSERT INTO runs (run_id, scenario, scenario_file, started_at, started_ms,
                    duration_ms, status, git_commit, versions, passed, failed, not_evaluated,
                    seed, firedrill_version, origin, report_dir)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
                params![
                    run.run_id,
                    run.scenario,
                    run.scenario_file,
                    run.started_at.map(|t| t.to_string()),
                    run.started_at.map(|t| t.as_millisecond()),
                    run.duration_ms as i64,
                    status_key(run.status),
                    run.git_commit,
                    versions,
                    run.counts.passed as i64,
                    run.counts.failed as i64,
                    run.counts.not_evaluated as i64,
                    // Seeds use all 64 bits; SQLite's integers are signed.
                    run.seed.map(|seed| seed as i64),
                    run.firedrill_version,
                    run.origin.key(),
                    run.report_dir,
                ],
            )
            .map_err(sql)?;
        let id = transaction.last_insert_rowid();
        {
            let mut insert = transaction
                .prepare(
                    "INSERT INTO verdicts (run, position, name, kind, status, summary)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .map_err(sql)?;
            for (position, verdict) in run.verdicts.iter().enumerate() {
                insert
                    .execute(params![
                        id,
                        position as i64,
                        verdict.name,
                        verdict.kind,
                        check_key(verdict.status),
                        verdict.summary
                    ])
                    .map_err(sql)?;
            }
            let mut insert = transaction
                .prepare(
                    "INSERT INTO figures (run, position, name, value, unit, better)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .map_err(sql)?;
            for (position, figure) in run.figures.iter().enumerate() {
                insert
                    .execute(params![
                        id,
                        position as i64,
                        figure.name,
                        figure.value,
                        figure.unit.key(),
                        figure.better.key()
                    ])
                    .map_err(sql)?;
            }
        }
        transaction.commit().map_err(sql)?;
        Ok(Recorded::Added)
    }

    /// The runs `filter` selects, oldest first (by start time, then by when they were recorded).
    pub fn runs(&self, filter: &RunFilter) -> Result<Vec<RunEntry>, HistoryError> {
        let sql = |source| HistoryError::Sql { path: self.path.clone(), doing: "read", source };
        let limit = filter.last.map_or(-1, |n| n as i64);
        // The latest `limit` runs (newest first), the figures and checks of those runs; then
        // put in order.
        let selected = "SELECT id FROM runs WHERE (?1 IS NULL OR scenario = ?1)
                        ORDER BY started_ms DESC, id DESC LIMIT ?2";
        let mut runs: Vec<(i64, RunEntry)> = {
            let mut query = self
                .connection
                .prepare(&format!(
                    "SELECT id, run_id, scenario, scenario_file, started_at, duration_ms, status,
                        git_commit, versions, passed, failed, not_evaluated, seed,
                        firedrill_version, origin, report_dir
                     FROM runs WHERE id IN ({selected})"
                ))
                .map_err(sql)?;
            let rows = query
                .query_map(params![filter.scenario, limit], |row| {
                    let versions: String = row.get(8)?;
                    let started_at: Option<String> = row.get(4)?;
                    let status: String = row.get(6)?;
                    let origin: String = row.get(14)?;
                    Ok((
                        row.get::<_, i64>(0)?,
                        RunEntry {
                            run_id: row.get(1)?,
                            scenario: row.get(2)?,
                            scenario_file: row.get(3)?,
                            started_at: started_at.and_then(|t| t.parse().ok()),
                            duration_ms: row.get::<_, i64>(5)? as u64,
                            status: status_from_key(&status),
                            origin: if origin == "imported" {
                                Origin::Imported
                            } else {
                                Origin::Run
                            },
                            git_commit: row.get(7)?,
                            versions: serde_json::from_str(&versions).unwrap_or_default(),
                            counts: Counts {
                                passed: row.get::<_, i64>(9)? as usize,
                                failed: row.get::<_, i64>(10)? as usize,
                                not_evaluated: row.get::<_, i64>(11)? as usize,
                            },
                            verdicts: Vec::new(),
                            figures: Vec::new(),
                            report_dir: row.get(15)?,
                            seed: row.get::<_, Option<i64>>(12)?.map(|seed| seed as u64),
                            firedrill_version: row.get(13)?,
                        },
                    ))
                })
                .map_err(sql)?;
            rows.collect::<Result<_, _>>().map_err(sql)?
        };
        let position: HashMap<i64, usize> =
            runs.iter().enumerate().map(|(i, (id, _))| (*id, i)).collect();
        {
            let mut query = self
                .connection
                .prepare(&format!(
                    "SELECT run, name, value, unit, better FROM figures
                     WHERE run IN ({selected}) ORDER BY run, position"
                ))
                .map_err(sql)?;
            let mut rows = query.query(params![filter.scenario, limit]).map_err(sql)?;
            while let Some(row) = rows.next().map_err(sql)? {
                let run: i64 = row.get(0).map_err(sql)?;
                let text = |column| -> Result<&str, HistoryError> {
                    row.get_ref(column)
                        .and_then(|value| value.as_str().map_err(Into::into))
                        .map_err(sql)
                };
                let (Some(&at), Some(unit), Some(better)) =
                    (position.get(&run), Unit::from_key(text(3)?), Better::from_key(text(4)?))
                else {
                    continue;
                };
                runs[at].1.figures.push(Figure {
                    name: row.get(1).map_err(sql)?,
                    value: row.get(2).map_err(sql)?,
                    unit,
                    better,
                });
            }
            if filter.without_checks {
                runs.sort_by_key(|(id, run)| (run.started_at.map(|t| t.as_millisecond()), *id));
                return Ok(runs.into_iter().map(|(_, run)| run).collect());
            }
            let mut query = self
                .connection
                .prepare(&format!(
                    "SELECT run, name, kind, status, summary FROM verdicts
                     WHERE run IN ({selected}) ORDER BY run, position"
                ))
                .map_err(sql)?;
            let mut rows = query.query(params![filter.scenario, limit]).map_err(sql)?;
            while let Some(row) = rows.next().map_err(sql)? {
                let run: i64 = row.get(0).map_err(sql)?;
                let Some(&at) = position.get(&run) else { continue };
                let status: String = row.get(3).map_err(sql)?;
                runs[at].1.verdicts.push(VerdictEntry {
                    name: row.get(1).map_err(sql)?,
                    kind: row.get(2).map_err(sql)?,
                    status: check_from_key(&status),
                    summary: row.get(4).map_err(sql)?,
                });
            }
        }
        runs.sort_by_key(|(id, run)| (run.started_at.map(|t| t.as_millisecond()), *id));
        Ok(runs.into_iter().map(|(_, run)| run).collect())
    }

    /// The run with this id.
    pub fn run(&self, run_id: &str) -> Result<Option<RunEntry>, HistoryError> {
        let sql = |source| HistoryError::Sql { path: self.path.clone(), doing: "read", source };
        let scenario: Option<String> = self
            .connection
            .query_row("SELECT scenario FROM runs WHERE run_id = ?1", [run_id], |row| row.get(0))
            .optional()
            .map_err(sql)?;
        let Some(scenario) = scenario else { return Ok(None) };
        let runs = self.runs(&RunFilter { scenario: Some(scenario), ..RunFilter::default() })?;
        Ok(runs.into_iter().find(|run| run.run_id == run_id))
    }

    /// The latest run of `scenario` that passed (status `completed`), other than `except`.
    pub fn last_pass(
        &self,
        scenario: &str,
        except: &str,
    ) -> Result<Option<RunEntry>, HistoryError> {
        let sql = |source| HistoryError::Sql { path: self.path.clone(), doing: "read", source };
        let run_id: Option<String> = self
            .connection
            .query_row(
                "SELECT run_id FROM runs
                 WHERE scenario = ?1 AND status = 'completed' AND run_id != ?2
                 ORDER BY started_ms DESC, id DESC LIMIT 1",
                [scenario, except],
                |row| row.get(0),
            )
            .optional()
            .map_err(sql)?;
        match run_id {
            Some(run_id) => self.run(&run_id),
            None => Ok(None),
        }
    }

    /// SQLite's own consistency check: `ok`, or what is wrong.
    pub fn integrity_check(&self) -> Result<String, HistoryError> {
        self.connection
            .query_row("PRAGMA integrity_check", [], |row| row.get(0))
            .map_err(|source| HistoryError::Sql { path: self.path.clone(), doing: "read", source })
    }
}

fn status_key(status: RunStatus) -> &'static str {
    match status {
        RunStatus::Completed => "completed",
        RunStatus::Deviated => "deviated",
        RunStatus::Aborted => "aborted",
        RunStatus::Interrupted => "interrupted",
    }
}

fn status_from_key(key: &str) -> RunStatus {
    match key {
        "completed" => RunStatus::Completed,
        "deviated" => RunStatus::Deviated,
        "interrupted" => RunStatus::Interrupted,
        _ => RunStatus::Aborted,
    }
}

fn check_key(status: CheckStatus) -> &'static str {
    match status {
        CheckStatus::Passed => "passed",
        CheckStatus::Failed => "failed",
        CheckStatus::NotEvaluated => "not-evaluated",
    }
}

fn check_from_key(key: &str) -> CheckStatus {
    match key {
        "passed" => CheckStatus::Passed,
        "failed" => CheckStatus::Failed,
        _ => CheckStatus::NotEvaluated,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::history::entry::tests::replayed;

    pub(crate) fn entry(run_id: &str, scenario: &str, minute: i64, restore_ms: f64) -> RunEntry {
        RunEntry {
            run_id: run_id.into(),
            scenario: scenario.into(),
            scenario_file: format!("scenarios/{scenario}.yaml"),
            started_at: Some(jiff::Timestamp::from_second(1_800_000_000 + minute * 60).unwrap()),
            duration_ms: 20_000,
            status: RunStatus::Completed,
            origin: Origin::Run,
            git_commit: Some("0123456789abcdef".into()),
            versions: [("billing".to_owned(), "2.0".to_owned())].into(),
            counts: Counts { passed: 1, failed: 0, not_evaluated: 0 },
            verdicts: vec![VerdictEntry {
                name: "billing restored".into(),
                kind: "restored".into(),
                status: CheckStatus::Passed,
                summary: "restored in 1.2s".into(),
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
                    value: 99.5,
                    unit: Unit::Percent,
                    better: Better::Higher,
                },
            ],
            report_dir: None,
            seed: Some(u64::MAX - 1),
            firedrill_version: "0.1.0".into(),
        }
    }

    #[test]
    fn a_run_reads_back_as_recorded_and_only_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state/history.sqlite");
        let mut history = History::open(&path).unwrap();
        let run = entry("fd-1", "release", 0, 1_200.0);
        assert_eq!(history.record(&run).unwrap(), Recorded::Added);
        assert_eq!(history.record(&run).unwrap(), Recorded::AlreadyThere);
        let runs = history.runs(&RunFilter::default()).unwrap();
        assert_eq!(runs, vec![run.clone()]);
        assert_eq!(history.run("fd-1").unwrap(), Some(run));
        assert_eq!(history.run("fd-2").unwrap(), None);
    }

    #[test]
    fn runs_come_oldest_first_filtered_and_limited() {
        let dir = tempfile::tempdir().unwrap();
        let mut history = History::open(&dir.path().join("h.sqlite")).unwrap();
        // Recorded out of order: the start time decides.
        for (id, scenario, minute) in
            [("fd-c", "a", 3), ("fd-a", "a", 1), ("fd-x", "b", 2), ("fd-b", "a", 2)]
        {
            history.record(&entry(id, scenario, minute, 1.0)).unwrap();
        }
        let ids = |filter: RunFilter| -> Vec<String> {
            history.runs(&filter).unwrap().into_iter().map(|r| r.run_id).collect()
        };
        assert_eq!(ids(RunFilter::default()), ["fd-a", "fd-x", "fd-b", "fd-c"]);
        assert_eq!(
            ids(RunFilter { scenario: Some("a".into()), ..RunFilter::default() }),
            ["fd-a", "fd-b", "fd-c"]
        );
        assert_eq!(
            ids(RunFilter { scenario: Some("a".into()), last: Some(2), ..RunFilter::default() }),
            ["fd-b", "fd-c"]
        );
    }

    #[test]
    fn last_pass_skips_failed_runs_other_scenarios_and_the_run_itself() {
        let dir = tempfile::tempdir().unwrap();
        let mut history = History::open(&dir.path().join("h.sqlite")).unwrap();
        history.record(&entry("fd-1", "a", 1, 1.0)).unwrap();
        let mut failed = entry("fd-2", "a", 2, 1.0);
        failed.status = RunStatus::Deviated;
        history.record(&failed).unwrap();
        history.record(&entry("fd-3", "b", 3, 1.0)).unwrap();
        history.record(&entry("fd-4", "a", 4, 1.0)).unwrap();
        let pass = |except| history.last_pass("a", except).unwrap().map(|r| r.run_id);
        assert_eq!(pass("fd-4").as_deref(), Some("fd-1"));
        assert_eq!(pass("none").as_deref(), Some("fd-4"));
        assert_eq!(history.last_pass("c", "").unwrap(), None);
    }

    /// Eight writers on their own connections (as separate processes would be) record 25 runs
    /// each at once: every run lands, the file is sound.
    #[test]
    fn concurrent_writers_all_land() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.sqlite");
        let writers: Vec<_> = (0..8)
            .map(|writer| {
                let path = path.clone();
                std::thread::spawn(move || {
                    let mut history = History::open(&path).unwrap();
                    for n in 0..25 {
                        let run = entry(&format!("fd-{writer}-{n}"), "a", n, n as f64);
                        assert_eq!(history.record(&run).unwrap(), Recorded::Added);
                    }
                })
            })
            .collect();
        for writer in writers {
            writer.join().unwrap();
        }
        let history = History::open(&path).unwrap();
        let runs = history.runs(&RunFilter::default()).unwrap();
        assert_eq!(runs.len(), 200);
        assert!(runs.iter().all(|r| r.figures.len() == 2 && r.verdicts.len() == 1));
        assert_eq!(history.integrity_check().unwrap(), "ok");
    }

    #[test]
    fn an_empty_file_is_migrated_to_the_current_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.sqlite");
        fs_err::write(&path, b"").unwrap();
        let history = History::open(&path).unwrap();
        assert_eq!(History::user_version(&history.connection).unwrap(), SCHEMA_VERSION);
        let mode: String =
            history.connection.pragma_query_value(None, "journal_mode", |r| r.get(0)).unwrap();
        assert_eq!(mode, "wal");
    }

    /// A file at schema 1 (no `origin`, no `report_dir`) with a run in it: opening migrates it,
    /// the run is still there and reads as recorded by `run`, and new runs get the new columns.
    #[test]
    fn an_older_file_is_migrated_and_keeps_its_runs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.sqlite");
        {
            let connection = Connection::open(&path).unwrap();
            connection.execute_batch(MIGRATIONS[0]).unwrap();
            connection
                .execute_batch(
                    "INSERT INTO runs (run_id, scenario, scenario_file, started_at, started_ms,
                        duration_ms, status, versions, passed, failed, not_evaluated,
                        firedrill_version)
                     VALUES ('fd-old', 'a', 'a.yaml', '2027-01-15T08:00:00Z', 1800000000000,
                        1000, 'completed', '{}', 1, 0, 0, '0.0.9');
                     INSERT INTO figures VALUES (1, 0, 'harness-overhead', 12.0, 'ms', 'lower');
                     PRAGMA user_version = 1;",
                )
                .unwrap();
        }
        let mut history = History::open(&path).unwrap();
        assert_eq!(History::user_version(&history.connection).unwrap(), SCHEMA_VERSION);
        let mut imported = entry("fd-new", "a", 10, 1.0);
        imported.origin = Origin::Imported;
        imported.report_dir = Some("reports".into());
        history.record(&imported).unwrap();
        let runs = history.runs(&RunFilter::default()).unwrap();
        assert_eq!(runs.len(), 2);
        assert_eq!((runs[0].run_id.as_str(), runs[0].origin), ("fd-old", Origin::Run));
        assert_eq!(runs[0].figures[0].value, 12.0);
        assert_eq!(runs[1], imported);
    }

    #[test]
    fn a_newer_file_is_refused_with_a_hint() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.sqlite");
        Connection::open(&path).unwrap().execute_batch("PRAGMA user_version = 99;").unwrap();
        let error = History::open(&path).unwrap_err();
        assert!(matches!(error, HistoryError::Newer { found: 99, .. }), "{error}");
        assert!(error.to_string().contains("schema version 99"), "{error}");
        assert!(error.hint().unwrap().contains("--history PATH"));
    }

    #[test]
    fn a_replayed_journal_records_its_figures() {
        let dir = tempfile::tempdir().unwrap();
        let mut history = History::open(&dir.path().join("history.sqlite")).unwrap();
        let record = replayed("db-pause.jsonl");
        let run = RunEntry::from_record(&record, Origin::Imported, None).unwrap();
        history.record(&run).unwrap();
        let back = history.run(&run.run_id).unwrap().unwrap();
        assert_eq!(back, run);
        assert!(back.figures.len() >= 4, "{:?}", back.figures);
    }
}
