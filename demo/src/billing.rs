//! `billing`: the demo stack's invoicing API, the service firedrill's scenarios upgrade, starve and
//! break.
//!
//! It is deliberately small but behaves like a real service under failure, because that behaviour
//! is what the rehearsals observe:
//! - one PostgreSQL connection, reconnected lazily whenever it is closed or a query fails at the
//!   connection level, so killing or restarting the database heals without restarting billing;
//! - every database call (connecting included) has a 1 s budget, so a *paused* database makes
//!   requests fail fast with 503 instead of hanging;
//! - SIGTERM and SIGINT shut it down gracefully (it runs as PID 1 in a `FROM scratch` image, where
//!   the kernel gives PID 1 no default action for them).
//!
//! # Releases
//! One binary is every release; the image bakes the choice into its environment
//! (`demo/images/billing/Dockerfile`: build args `VERSION` and `FAULT`).
//! - `BILLING_VERSION=1.0` (any `1.x`): the table `invoices (id, customer, amount_cents,
//!   created_at)`, created if missing. Works unchanged on the 2.0 schema, so 2.0 can be rolled back.
//! - `BILLING_VERSION=2.0` (any `2.x` or later): migration `2.0`, additive and idempotent, in one
//!   transaction: `ALTER TABLE invoices ADD COLUMN IF NOT EXISTS currency TEXT NOT NULL DEFAULT
//!   'EUR'` and the row `('2.0', now())` in `schema_migrations (version TEXT PRIMARY KEY,
//!   applied_at TIMESTAMPTZ)`. Invoices carry `currency` (request: optional, ISO 4217, default
//!   `EUR`; response: always).
//!
//! `BILLING_FAULT` turns a 2.x release into a broken one (empty: none; with 1.x: a startup error):
//! - `crash`: exits 1 right after start, before touching the database, logging
//!   `billing: fatal: missing required setting BILLING_REGION` (unconditionally: setting it does
//!   not help).
//! - `unhealthy`: migrates and serves normally, but `GET /health` answers 500
//!   `dependency check failed: ...` (still 503 first when the database is down).
//! - `migration-partial`: its migration runs statement by statement without a transaction: it adds
//!   `currency`, then fails creating an index on a column that does not exist, logs the error and
//!   exits 1. Left behind: the `currency` column and an empty `schema_migrations` table (no `2.0`
//!   row). Every start fails the same way.
//! - `slow-start`: migrates, then warms caches for 120 s (a `warming caches...` line every 5 s)
//!   before it listens.
//! - `errors`: migrates and serves, `/health` is 200, but every 5th `POST /invoices` (counted per
//!   process) answers 500 without writing anything.
//! - `destructive`: its migration "rebuilds" `invoices`: `DROP TABLE invoices` and creates it again,
//!   empty, with `currency` (ids restart at 1). Then it serves normally and is healthy. It does so
//!   on every start and every `billing migrate`.
//!
//! Migrations are serialised across instances with a PostgreSQL advisory lock.
//!
//! # Usage
//! `billing` serves; `billing migrate` only brings the schema up to this release (the same
//! migration the server runs at start, faults included) and exits 0, or 1 with the error (a one-shot
//! migration container). The server's faults (`crash`, `unhealthy`, `slow-start`, `errors`) do not
//! affect `billing migrate`.
//!
//! Environment: `DATABASE_URL` (required, e.g. `postgres://postgres@db:5432/billing`), `PORT`
//! (default 8080), `BILLING_VERSION` (default `1.0`, reported by `/version`), `BILLING_FAULT`
//! (default none).
//!
//! Endpoints: `GET /health`, `GET /version`, `POST /invoices`, `GET /invoices` (`{"count": N}`),
//! `GET /invoices/{id}`, and `GET /metrics` for Prometheus (text exposition format 0.0.4):
//! `billing_http_requests_total{code="2xx"|"4xx"|"5xx"}`, every answered request but the scrapes
//! themselves (so a scrape every second does not dilute the error ratio; 1xx/3xx appear once
//! seen), and `billing_up 1`. Once listening it prints `billing <version> listening on 0.0.0.0:<port>`
//! on stdout; everything else it logs goes to stderr, one line per event, prefixed `billing: `.

use std::{
    future::Future,
    net::SocketAddr,
    process::ExitCode,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use axum::{
    Json, Router,
    extract::{Path, Request, State},
    http::StatusCode,
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::get,
};
use serde::{Deserialize, Serialize};
use tokio::{
    signal::unix::{SignalKind, signal},
    sync::Mutex,
    task::JoinHandle,
};
use tokio_postgres::{Client, NoTls, Row};

/// Budget for one database call on a request path, connecting included.
const DB_TIMEOUT: Duration = Duration::from_secs(1);
/// How long startup keeps retrying a database that is not up yet.
const STARTUP_BUDGET: Duration = Duration::from_secs(30);
/// Budget for one startup attempt (connect plus schema); a cold database may be slower than 1 s.
const STARTUP_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);
/// Backoff cap: a rehearsal measures how fast billing follows a recovering database.
const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// `slow-start`: how long the cache warm-up takes, and how often it says so.
const WARMUP: Duration = Duration::from_secs(120);
const WARMUP_TICK: Duration = Duration::from_secs(5);
/// `errors`: every how many-th `POST /invoices` fails.
const FAILING_WRITE_EVERY: u64 = 5;
/// `pg_advisory_lock` key that serialises schema changes between instances ("bill").
const SCHEMA_LOCK: i64 = 0x6269_6c6c;

/// The 1.0 schema (also the starting point of every later one).
const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS invoices (
    id BIGSERIAL PRIMARY KEY,
    customer TEXT NOT NULL,
    amount_cents BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
)";
/// Migration bookkeeping, created before a migration's own statements.
const SCHEMA_MIGRATIONS: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    version TEXT PRIMARY KEY,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
)";
const ADD_CURRENCY: &str =
    "ALTER TABLE invoices ADD COLUMN IF NOT EXISTS currency TEXT NOT NULL DEFAULT 'EUR'";
const RECORD_2_0: &str =
    "INSERT INTO schema_migrations (version) VALUES ('2.0') ON CONFLICT (version) DO NOTHING";

/// Migration 2.0 as the good release ships it.
const MIGRATION_2_0: Migration =
    Migration { version: "2.0", statements: &[ADD_CURRENCY, RECORD_2_0], transactional: true };
/// `migration-partial`: a second statement that references a column nobody created, run by a
/// migration tool that does not wrap the migration in a transaction.
const MIGRATION_2_0_PARTIAL: Migration = Migration {
    version: "2.0",
    statements: &[
        ADD_CURRENCY,
        "CREATE INDEX invoices_region_currency_idx ON invoices (region, currency)",
        RECORD_2_0,
    ],
    transactional: false,
};
/// `destructive`: "rebuilds" the table instead of altering it, and copies nothing over.
const MIGRATION_2_0_DESTRUCTIVE: Migration = Migration {
    version: "2.0",
    statements: &[
        "DROP TABLE invoices",
        "CREATE TABLE invoices (
            id BIGSERIAL PRIMARY KEY,
            customer TEXT NOT NULL,
            amount_cents BIGINT NOT NULL,
            currency TEXT NOT NULL DEFAULT 'EUR',
            created_at TIMESTAMPTZ NOT NULL DEFAULT now()
        )",
        RECORD_2_0,
    ],
    transactional: true,
};

/// The columns an [`Invoice`] is read from; `created_at` as RFC 3339 text in UTC, so no date crate
/// is needed.
const INVOICE_COLUMNS: &str = "id, customer, amount_cents, \
    to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') AS created_at";

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mode = match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        [] => Mode::Serve,
        ["migrate"] => Mode::Migrate,
        _ => {
            eprintln!("usage: billing [migrate]  (got {args:?})");
            return ExitCode::from(2);
        }
    };
    match run(mode).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("billing: {message}");
            ExitCode::FAILURE
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// `billing`: migrate, then serve HTTP.
    Serve,
    /// `billing migrate`: migrate, then exit.
    Migrate,
}

/// A way the 2.0 release is broken (`BILLING_FAULT`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Fault {
    Crash,
    Unhealthy,
    MigrationPartial,
    SlowStart,
    Errors,
    Destructive,
}

impl Fault {
    const ALL: [Self; 6] = [
        Self::Crash,
        Self::Unhealthy,
        Self::MigrationPartial,
        Self::SlowStart,
        Self::Errors,
        Self::Destructive,
    ];

    fn name(self) -> &'static str {
        match self {
            Self::Crash => "crash",
            Self::Unhealthy => "unhealthy",
            Self::MigrationPartial => "migration-partial",
            Self::SlowStart => "slow-start",
            Self::Errors => "errors",
            Self::Destructive => "destructive",
        }
    }
}

/// What this process is: its version, schema generation and fault, from the environment.
struct Release {
    version: String,
    /// Whether the release has the 2.0 schema (`invoices.currency`, `schema_migrations`).
    v2: bool,
    fault: Option<Fault>,
}

impl Release {
    fn from_env() -> Result<Self, String> {
        let version = std::env::var("BILLING_VERSION").unwrap_or_else(|_| "1.0".to_string());
        let major: u32 =
            version.split('.').next().and_then(|major| major.parse().ok()).ok_or_else(|| {
                format!("BILLING_VERSION must look like 1.0 or 2.0, not {version:?}")
            })?;
        let fault = match std::env::var("BILLING_FAULT").unwrap_or_default().trim() {
            "" => None,
            name => Some(Fault::ALL.into_iter().find(|f| f.name() == name).ok_or_else(|| {
                let known: Vec<_> = Fault::ALL.iter().map(|f| f.name()).collect();
                format!("BILLING_FAULT={name:?} is not one of {}", known.join(", "))
            })?),
        };
        let v2 = major >= 2;
        if let Some(fault) = fault.filter(|_| !v2) {
            return Err(format!(
                "BILLING_FAULT={} only applies to 2.x releases; this is {version}",
                fault.name()
            ));
        }
        Ok(Self { version, v2, fault })
    }

    /// The migration this release applies on top of the 1.0 schema, if any.
    fn migration(&self) -> Option<&'static Migration> {
        match (self.v2, self.fault) {
            (false, _) => None,
            (true, Some(Fault::MigrationPartial)) => Some(&MIGRATION_2_0_PARTIAL),
            (true, Some(Fault::Destructive)) => Some(&MIGRATION_2_0_DESTRUCTIVE),
            (true, _) => Some(&MIGRATION_2_0),
        }
    }
}

/// A schema migration as a release ships it.
struct Migration {
    version: &'static str,
    statements: &'static [&'static str],
    /// All statements in one transaction (all or nothing), or each on its own, so a failure
    /// leaves the ones before it applied.
    transactional: bool,
}

async fn run(mode: Mode) -> Result<(), String> {
    let url = std::env::var("DATABASE_URL").map_err(|_| "DATABASE_URL is not set".to_string())?;
    let config: tokio_postgres::Config = url
        .parse()
        .map_err(|error| format!("DATABASE_URL is not a valid PostgreSQL URL: {error}"))?;
    let port: u16 = match std::env::var("PORT") {
        Ok(port) => port.parse().map_err(|_| format!("PORT is not a port number: {port:?}"))?,
        Err(_) => 8080,
    };
    let release = Arc::new(Release::from_env()?);

    // Install the handlers before anything slow, so a stop during the database wait is honoured.
    let mut sigterm = signal(SignalKind::terminate())
        .map_err(|error| format!("cannot install the SIGTERM handler: {error}"))?;
    let mut sigint = signal(SignalKind::interrupt())
        .map_err(|error| format!("cannot install the SIGINT handler: {error}"))?;
    let mut shutdown = Box::pin(async move {
        let name = tokio::select! {
            _ = sigterm.recv() => "SIGTERM",
            _ = sigint.recv() => "SIGINT",
        };
        eprintln!("billing: {name} received, shutting down");
    });

    let db = Arc::new(Db::new(config));
    if mode == Mode::Migrate {
        eprintln!("billing: {} migrating the schema", release.version);
        tokio::select! {
            ready = db.prepare(&release) => ready?,
            () = &mut shutdown => return Err("stopped before the migration finished".into()),
        }
        eprintln!("billing: schema is at {}", release.version);
        return Ok(());
    }

    eprintln!("billing: {} starting", release.version);
    if release.fault == Some(Fault::Crash) {
        return Err("fatal: missing required setting BILLING_REGION".into());
    }
    tokio::select! {
        ready = db.prepare(&release) => ready?,
        () = &mut shutdown => return Ok(()),
    }
    if release.fault == Some(Fault::SlowStart) {
        tokio::select! {
            () = warm_caches() => {}
            () = &mut shutdown => return Ok(()),
        }
    }
    if release.fault == Some(Fault::Unhealthy) {
        eprintln!("billing: warning: payments gateway unreachable (payments.internal:443)");
    }

    let addr = SocketAddr::from(([0, 0, 0, 0], port));
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|error| format!("cannot listen on {addr}: {error}"))?;
    let columns = if release.v2 {
        format!("{INVOICE_COLUMNS}, currency")
    } else {
        INVOICE_COLUMNS.to_string()
    };
    let sql = Sql {
        insert: if release.v2 {
            format!(
                "INSERT INTO invoices (customer, amount_cents, currency) VALUES ($1, $2, $3) \
                 RETURNING {columns}"
            )
        } else {
            format!(
                "INSERT INTO invoices (customer, amount_cents) VALUES ($1, $2) RETURNING {columns}"
            )
        },
        select_one: format!("SELECT {columns} FROM invoices WHERE id = $1"),
    };
    let state = AppState {
        db,
        release: Arc::clone(&release),
        sql: Arc::new(sql),
        writes: Arc::new(AtomicU64::new(0)),
        requests: Arc::new(RequestCounts::default()),
    };
    let counted = Arc::clone(&state.requests);
    let app = Router::new()
        .route("/health", get(health))
        .route("/version", get(version_info))
        .route("/invoices", get(count_invoices).post(create_invoice))
        .route("/invoices/{id}", get(get_invoice))
        // Outside the counting layer: scrapes and fault drills are not traffic.
        .route_layer(middleware::from_fn(move |request: Request, next: Next| {
            let counted = Arc::clone(&counted);
            async move {
                let response = next.run(request).await;
                counted.record(response.status());
                response
            }
        }))
        .route("/metrics", get(metrics))
        .route("/debug/allocate", axum::routing::post(debug_allocate))
        .with_state(state);
    let bound = listener.local_addr().unwrap_or(addr);
    println!("billing {} listening on {bound}", release.version);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|error| format!("server failed: {error}"))?;
    eprintln!("billing: stopped");
    Ok(())
}

/// `slow-start`: [`WARMUP`] of "work" before the server listens, reported every [`WARMUP_TICK`].
async fn warm_caches() {
    let mut ticker = tokio::time::interval(WARMUP_TICK);
    let ticks = WARMUP.as_secs() / WARMUP_TICK.as_secs();
    for tick in 0..ticks {
        ticker.tick().await;
        let done = tick * WARMUP_TICK.as_secs();
        eprintln!("billing: warming caches... ({done} s of {} s)", WARMUP.as_secs());
    }
    ticker.tick().await;
    eprintln!("billing: caches warm");
}

#[derive(Clone)]
struct AppState {
    db: Arc<Db>,
    release: Arc<Release>,
    sql: Arc<Sql>,
    /// `POST /invoices` requests that passed validation (for the `errors` fault).
    writes: Arc<AtomicU64>,
    /// Answered requests by status class, for `/metrics`.
    requests: Arc<RequestCounts>,
}

/// `billing_http_requests_total`, one counter per status class (index: the status' first digit).
#[derive(Default)]
struct RequestCounts {
    by_class: [AtomicU64; 6],
}

impl RequestCounts {
    fn record(&self, status: StatusCode) {
        let class = usize::from(status.as_u16() / 100).min(5);
        self.by_class[class].fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition of the counters and `billing_up`. 2xx, 4xx and 5xx are
    /// always there (a series that appears only at its first error would make `rate()` miss
    /// it); 1xx and 3xx once seen.
    fn exposition(&self) -> String {
        let mut text = String::from(
            "# HELP billing_http_requests_total HTTP requests billing answered, by status class.\n\
             # TYPE billing_http_requests_total counter\n",
        );
        for (class, count) in self.by_class.iter().enumerate().skip(1) {
            let count = count.load(Ordering::Relaxed);
            if count > 0 || matches!(class, 2 | 4 | 5) {
                text.push_str(&format!(
                    "billing_http_requests_total{{code=\"{class}xx\"}} {count}\n"
                ));
            }
        }
        text.push_str("# HELP billing_up Whether billing is serving (always 1 when it answers).\n");
        text.push_str("# TYPE billing_up gauge\nbilling_up 1\n");
        text
    }
}

async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        state.requests.exposition(),
    )
        .into_response()
}

/// The statements whose columns depend on the release.
struct Sql {
    insert: String,
    select_one: String,
}

#[derive(Deserialize)]
struct NewInvoice {
    customer: String,
    amount_cents: i64,
    /// 2.x only (1.x ignores it, as it ignores any unknown field).
    #[serde(default)]
    currency: Option<String>,
}

#[derive(Serialize)]
struct Invoice {
    id: i64,
    customer: String,
    amount_cents: i64,
    /// 2.x only.
    #[serde(skip_serializing_if = "Option::is_none")]
    currency: Option<String>,
    created_at: String,
}

impl Invoice {
    fn from_row(row: &Row, v2: bool) -> Result<Self, tokio_postgres::Error> {
        Ok(Self {
            id: row.try_get("id")?,
            customer: row.try_get("customer")?,
            amount_cents: row.try_get("amount_cents")?,
            currency: if v2 { Some(row.try_get("currency")?) } else { None },
            created_at: row.try_get("created_at")?,
        })
    }
}

async fn health(State(state): State<AppState>) -> Response {
    match state.db.run(|conn| async move { conn.client.simple_query("SELECT 1").await }).await {
        Ok(_) if state.release.fault == Some(Fault::Unhealthy) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "dependency check failed: payments gateway payments.internal:443: connection refused",
        )
            .into_response(),
        Ok(_) => (StatusCode::OK, "ok").into_response(),
        Err(error) => error.into_response(),
    }
}

async fn version_info(State(state): State<AppState>) -> Response {
    Json(serde_json::json!({ "service": "billing", "version": &*state.release.version }))
        .into_response()
}

async fn create_invoice(
    State(state): State<AppState>,
    Json(new): Json<NewInvoice>,
) -> Result<Response, DbError> {
    if new.customer.trim().is_empty() {
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, "customer must not be empty").into_response());
    }
    let v2 = state.release.v2;
    let currency = new.currency.clone().unwrap_or_else(|| "EUR".to_string());
    if v2 && !(currency.len() == 3 && currency.bytes().all(|b| b.is_ascii_uppercase())) {
        return Ok((
            StatusCode::UNPROCESSABLE_ENTITY,
            "currency must be an ISO 4217 code such as EUR",
        )
            .into_response());
    }
    let nth = state.writes.fetch_add(1, Ordering::Relaxed) + 1;
    if state.release.fault == Some(Fault::Errors) && nth % FAILING_WRITE_EVERY == 0 {
        let reason =
            format!("tax rate lookup failed for customer {:?}: no rate table", new.customer);
        eprintln!("billing: error: POST /invoices: {reason}");
        return Ok((StatusCode::INTERNAL_SERVER_ERROR, format!("internal error: {reason}"))
            .into_response());
    }
    let new = &new;
    let currency = &currency;
    let sql = state.sql.insert.as_str();
    let invoice = state
        .db
        .run(|conn| async move {
            let row = if v2 {
                conn.client.query_one(sql, &[&new.customer, &new.amount_cents, currency]).await?
            } else {
                conn.client.query_one(sql, &[&new.customer, &new.amount_cents]).await?
            };
            Invoice::from_row(&row, v2)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(invoice)).into_response())
}

async fn get_invoice(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Response, DbError> {
    let v2 = state.release.v2;
    let sql = state.sql.select_one.as_str();
    let invoice = state
        .db
        .run(|conn| async move {
            match conn.client.query_opt(sql, &[&id]).await? {
                Some(row) => Invoice::from_row(&row, v2).map(Some),
                None => Ok(None),
            }
        })
        .await?;
    Ok(match invoice {
        Some(invoice) => Json(invoice).into_response(),
        None => (StatusCode::NOT_FOUND, format!("no invoice {id}")).into_response(),
    })
}

async fn count_invoices(State(state): State<AppState>) -> Result<Response, DbError> {
    let count: i64 = state
        .db
        .run(|conn| async move {
            let row = conn.client.query_one("SELECT count(*) FROM invoices", &[]).await?;
            row.try_get(0)
        })
        .await?;
    Ok(Json(serde_json::json!({ "count": count })).into_response())
}

/// Why bringing the schema up to date failed.
struct SchemaError {
    /// Where: empty for the 1.0 schema and the bookkeeping, else the failed migration statement.
    context: String,
    error: tokio_postgres::Error,
}

impl SchemaError {
    fn new(error: tokio_postgres::Error) -> Self {
        Self { context: String::new(), error }
    }
}

/// Brings the schema up to `release` (idempotent for every release but `destructive`), holding
/// [`SCHEMA_LOCK`] so concurrently starting instances take turns.
async fn apply_schema(client: &mut Client, release: &Release) -> Result<(), SchemaError> {
    client
        .execute("SELECT pg_advisory_lock($1)", &[&SCHEMA_LOCK])
        .await
        .map_err(SchemaError::new)?;
    let result = apply_schema_locked(client, release).await;
    if !client.is_closed() {
        // Closing the session would release it too; an error here changes nothing.
        let _ = client.execute("SELECT pg_advisory_unlock($1)", &[&SCHEMA_LOCK]).await;
    }
    result
}

async fn apply_schema_locked(client: &mut Client, release: &Release) -> Result<(), SchemaError> {
    client.batch_execute(SCHEMA).await.map_err(SchemaError::new)?;
    let Some(migration) = release.migration() else {
        return Ok(());
    };
    let count = migration.statements.len();
    let at = |index: usize, sql: &str| {
        let sql = sql.split_whitespace().collect::<Vec<_>>().join(" ");
        move |error| SchemaError {
            context: format!(
                "migration {} failed at statement {} of {count} ({sql})",
                migration.version,
                index + 1
            ),
            error,
        }
    };
    let recorded = migration_recorded(client, migration.version).await.map_err(SchemaError::new)?;
    if migration.transactional {
        let tx = client.transaction().await.map_err(SchemaError::new)?;
        tx.batch_execute(SCHEMA_MIGRATIONS).await.map_err(SchemaError::new)?;
        for (index, sql) in migration.statements.iter().enumerate() {
            tx.batch_execute(sql).await.map_err(at(index, sql))?;
        }
        tx.commit().await.map_err(SchemaError::new)?;
    } else {
        client.batch_execute(SCHEMA_MIGRATIONS).await.map_err(SchemaError::new)?;
        for (index, sql) in migration.statements.iter().enumerate() {
            client.batch_execute(sql).await.map_err(at(index, sql))?;
        }
    }
    eprintln!(
        "billing: migration {} {} ({count} statements{})",
        migration.version,
        if recorded { "re-applied, was recorded already" } else { "applied" },
        if migration.transactional { ", one transaction" } else { "" }
    );
    Ok(())
}

/// Whether `schema_migrations` exists and has a row for `version`.
async fn migration_recorded(client: &Client, version: &str) -> Result<bool, tokio_postgres::Error> {
    let table: bool = client
        .query_one("SELECT to_regclass('schema_migrations') IS NOT NULL", &[])
        .await?
        .try_get(0)?;
    if !table {
        return Ok(false);
    }
    let row =
        client.query_opt("SELECT 1 FROM schema_migrations WHERE version = $1", &[&version]).await?;
    Ok(row.is_some())
}

/// Why a database call failed, as the HTTP caller sees it.
#[derive(Debug)]
enum DbError {
    /// The database cannot be reached or did not answer in time: 503.
    Unavailable(String),
    /// The database answered with an error: 500.
    Failed(String),
}

impl IntoResponse for DbError {
    fn into_response(self) -> Response {
        match self {
            Self::Unavailable(reason) => {
                (StatusCode::SERVICE_UNAVAILABLE, format!("database unavailable: {reason}"))
                    .into_response()
            }
            Self::Failed(reason) => {
                eprintln!("billing: database error: {reason}");
                (StatusCode::INTERNAL_SERVER_ERROR, format!("database error: {reason}"))
                    .into_response()
            }
        }
    }
}

/// One live connection: the client and the task that drives its socket.
struct Conn {
    client: Client,
    driver: JoinHandle<()>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        // A connection to a paused or vanished server never ends by itself.
        self.driver.abort();
    }
}

/// The shared database handle: at most one connection, replaced when it breaks.
struct Db {
    config: tokio_postgres::Config,
    current: Mutex<Option<Arc<Conn>>>,
}

impl Db {
    fn new(config: tokio_postgres::Config) -> Self {
        Self { config, current: Mutex::new(None) }
    }

    async fn connect(&self) -> Result<Conn, tokio_postgres::Error> {
        let (client, connection) = self.config.connect(NoTls).await?;
        let driver = tokio::spawn(async move {
            if let Err(error) = connection.await {
                eprintln!("billing: database connection closed: {}", describe(&error));
            }
        });
        Ok(Conn { client, driver })
    }

    /// Waits for the database at startup (retrying with backoff for up to [`STARTUP_BUDGET`]),
    /// brings the schema up to `release`, and keeps that connection for the requests. A failed
    /// connection is retried; a schema statement the database rejects is not (it would fail the
    /// same way again).
    #[expect(
        clippy::disallowed_methods,
        reason = "startup retries against a wall-clock budget with backoff; the demo has no clock module"
    )]
    async fn prepare(&self, release: &Release) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + STARTUP_BUDGET;
        let mut backoff = Duration::from_millis(100);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = tokio::time::timeout(STARTUP_ATTEMPT_TIMEOUT, async {
                let mut conn = self.connect().await.map_err(SchemaError::new)?;
                apply_schema(&mut conn.client, release).await?;
                Ok::<_, SchemaError>(conn)
            })
            .await;
            let error = match result {
                Ok(Ok(conn)) => {
                    *self.current.lock().await = Some(Arc::new(conn));
                    return Ok(());
                }
                Ok(Err(SchemaError { context, error })) if !is_connection_error(&error) => {
                    let what = if context.is_empty() { "schema setup failed" } else { &context };
                    return Err(format!(
                        "fatal: {what}: {}; the schema may be partially migrated",
                        describe(&error)
                    ));
                }
                Ok(Err(SchemaError { error, .. })) => describe(&error),
                Err(_) => format!("no answer within {STARTUP_ATTEMPT_TIMEOUT:?}"),
            };
            if tokio::time::Instant::now() + backoff > deadline {
                return Err(format!(
                    "database not ready after {attempt} attempts in {STARTUP_BUDGET:?}: {error}"
                ));
            }
            eprintln!(
                "billing: database not ready (attempt {attempt}, retrying in {backoff:?}): {error}"
            );
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// The current connection, or a new one if there is none or it has closed.
    async fn conn(&self) -> Result<Arc<Conn>, tokio_postgres::Error> {
        // Holding the lock while connecting keeps concurrent requests from stampeding a
        // recovering database; each caller's own timeout bounds its wait.
        let mut current = self.current.lock().await;
        if let Some(conn) = current.as_ref().filter(|conn| !conn.client.is_closed()) {
            return Ok(Arc::clone(conn));
        }
        *current = None;
        let conn = Arc::new(self.connect().await?);
        eprintln!("billing: connected to the database");
        *current = Some(Arc::clone(&conn));
        Ok(conn)
    }

    /// Forgets `conn` (unless it was already replaced) and stops its driver, so in-flight calls on
    /// it fail now and the next call reconnects.
    async fn discard(&self, conn: &Arc<Conn>, why: &str) {
        let mut current = self.current.lock().await;
        if current.as_ref().is_some_and(|c| Arc::ptr_eq(c, conn)) {
            eprintln!("billing: dropping the database connection: {why}");
            *current = None;
        }
        conn.driver.abort();
    }

    /// Runs `op` on a live connection within [`DB_TIMEOUT`], connecting first if needed. A timeout
    /// or a connection-level failure discards the connection it happened on.
    async fn run<T, F, Fut>(&self, op: F) -> Result<T, DbError>
    where
        F: FnOnce(Arc<Conn>) -> Fut,
        Fut: Future<Output = Result<T, tokio_postgres::Error>>,
    {
        enum Failure {
            Connect(tokio_postgres::Error),
            Query(tokio_postgres::Error),
        }
        let mut used = None;
        let attempt = tokio::time::timeout(DB_TIMEOUT, async {
            let conn = self.conn().await.map_err(Failure::Connect)?;
            used = Some(Arc::clone(&conn));
            op(conn).await.map_err(Failure::Query)
        })
        .await;
        match attempt {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(Failure::Connect(error))) => Err(DbError::Unavailable(describe(&error))),
            Ok(Err(Failure::Query(error))) if is_connection_error(&error) => {
                let reason = describe(&error);
                if let Some(conn) = &used {
                    self.discard(conn, &reason).await;
                }
                Err(DbError::Unavailable(reason))
            }
            Ok(Err(Failure::Query(error))) => Err(DbError::Failed(describe(&error))),
            Err(_) => {
                // Timed out in the query (paused or vanished server: the socket may never fail by
                // itself, so drop it) or while connecting (nothing to drop).
                if let Some(conn) = &used {
                    self.discard(conn, "no answer in time").await;
                }
                Err(DbError::Unavailable(format!("no answer within {DB_TIMEOUT:?}")))
            }
        }
    }
}

/// `error` and its causes, `: `-separated (tokio-postgres' own message leaves out the cause, e.g.
/// "error connecting to server" without "Connection refused").
fn describe(error: &tokio_postgres::Error) -> String {
    let mut text = error.to_string();
    let mut cause = std::error::Error::source(error);
    while let Some(inner) = cause {
        let inner_text = inner.to_string();
        if !text.ends_with(&inner_text) {
            text = format!("{text}: {inner_text}");
        }
        cause = inner.source();
    }
    text
}

/// Whether `error` means the connection (or the server behind it) is unusable, as opposed to the
/// server rejecting one statement.
fn is_connection_error(error: &tokio_postgres::Error) -> bool {
    if error.is_closed() {
        return true;
    }
    // No SQLSTATE: an I/O or protocol failure on the socket (or a decoding bug, after which a
    // fresh connection does no harm either).
    let Some(code) = error.code() else {
        return true;
    };
    // 08 connection exception, 53 insufficient resources, 57 operator intervention (shutdown,
    // crash recovery).
    matches!(&code.code()[..2], "08" | "53" | "57")
}

/// `POST /debug/allocate?mib=N`: allocate N MiB, write to every page (so the memory is really
/// resident, not just reserved) and keep it until the process ends. firedrill's `memory` fault
/// uses it to make billing outgrow a limit on purpose and get OOM-killed.
async fn debug_allocate(uri: axum::http::Uri) -> Response {
    static HELD: std::sync::Mutex<Vec<Vec<u8>>> = std::sync::Mutex::new(Vec::new());
    let mib = uri.query().unwrap_or("").split('&').find_map(|pair| pair.strip_prefix("mib="));
    let Some(mib) = mib.and_then(|mib| mib.parse::<usize>().ok()) else {
        return (axum::http::StatusCode::BAD_REQUEST, "want ?mib=N\n").into_response();
    };
    let mut held = HELD.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    for _ in 0..mib {
        // One MiB at a time, each page touched: the cgroup charges it as it is written.
        let mut chunk = vec![0u8; 1 << 20];
        for page in chunk.chunks_mut(4096) {
            page[0] = 1;
        }
        held.push(chunk);
    }
    let total = held.len();
    (axum::http::StatusCode::OK, format!("{{\"held-mib\":{total}}}\n")).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_counts_by_status_class_and_always_lists_2xx_4xx_5xx() {
        let counts = RequestCounts::default();
        assert!(counts.exposition().contains("billing_http_requests_total{code=\"5xx\"} 0\n"));
        for status in [200, 201, 404, 503, 500, 500] {
            counts.record(StatusCode::from_u16(status).unwrap());
        }
        let text = counts.exposition();
        assert!(text.contains("billing_http_requests_total{code=\"2xx\"} 2\n"), "{text}");
        assert!(text.contains("billing_http_requests_total{code=\"4xx\"} 1\n"), "{text}");
        assert!(text.contains("billing_http_requests_total{code=\"5xx\"} 3\n"), "{text}");
        assert!(!text.contains("3xx"), "{text}");
        assert!(text.contains("# TYPE billing_up gauge\nbilling_up 1\n"), "{text}");
        counts.record(StatusCode::FOUND);
        assert!(counts.exposition().contains("billing_http_requests_total{code=\"3xx\"} 1\n"));
    }
}
