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
//! Environment: `DATABASE_URL` (required, e.g. `postgres://postgres@db:5432/billing`), `PORT`
//! (default 8080), `BILLING_VERSION` (default `1.0`, reported by `/version`).
//!
//! Endpoints: `GET /health`, `GET /version`, `POST /invoices`, `GET /invoices`,
//! `GET /invoices/{id}`. Once listening it prints `billing <version> listening on 0.0.0.0:<port>`
//! on stdout; everything else it logs goes to stderr.

use std::{future::Future, net::SocketAddr, process::ExitCode, sync::Arc, time::Duration};

use axum::{
    Json, Router,
    extract::{Path, State},
    http::StatusCode,
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

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS invoices (
    id BIGSERIAL PRIMARY KEY,
    customer TEXT NOT NULL,
    amount_cents BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
)";
/// The columns an [`Invoice`] is read from; `created_at` as RFC 3339 text in UTC, so no date crate
/// is needed.
const INVOICE_COLUMNS: &str = "id, customer, amount_cents, \
    to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') AS created_at";

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("billing: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), String> {
    let url = std::env::var("DATABASE_URL").map_err(|_| "DATABASE_URL is not set".to_string())?;
    let config: tokio_postgres::Config = url
        .parse()
        .map_err(|error| format!("DATABASE_URL is not a valid PostgreSQL URL: {error}"))?;
    let port: u16 = match std::env::var("PORT") {
        Ok(port) => port.parse().map_err(|_| format!("PORT is not a port number: {port:?}"))?,
        Err(_) => 8080,
    };
    let version = std::env::var("BILLING_VERSION").unwrap_or_else(|_| "1.0".to_string());

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
    tokio::select! {
        ready = db.prepare() => ready?,
        () = &mut shutdown => return Ok(()),
    }

    let addr = SocketAddr::from(([0, 0, 0, 0], port));
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|error| format!("cannot listen on {addr}: {error}"))?;
    let app = Router::new()
        .route("/health", get(health))
        .route("/version", get(version_info))
        .route("/invoices", get(count_invoices).post(create_invoice))
        .route("/invoices/{id}", get(get_invoice))
        .with_state(AppState { db, version: Arc::from(version.as_str()) });
    let bound = listener.local_addr().unwrap_or(addr);
    println!("billing {version} listening on {bound}");
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|error| format!("server failed: {error}"))?;
    eprintln!("billing: stopped");
    Ok(())
}

#[derive(Clone)]
struct AppState {
    db: Arc<Db>,
    version: Arc<str>,
}

#[derive(Deserialize)]
struct NewInvoice {
    customer: String,
    amount_cents: i64,
}

#[derive(Serialize)]
struct Invoice {
    id: i64,
    customer: String,
    amount_cents: i64,
    created_at: String,
}

impl Invoice {
    fn from_row(row: &Row) -> Result<Self, tokio_postgres::Error> {
        Ok(Self {
            id: row.try_get("id")?,
            customer: row.try_get("customer")?,
            amount_cents: row.try_get("amount_cents")?,
            created_at: row.try_get("created_at")?,
        })
    }
}

async fn health(State(state): State<AppState>) -> Response {
    match state.db.run(|conn| async move { conn.client.simple_query("SELECT 1").await }).await {
        Ok(_) => (StatusCode::OK, "ok").into_response(),
        Err(error) => error.into_response(),
    }
}

async fn version_info(State(state): State<AppState>) -> Response {
    Json(serde_json::json!({ "service": "billing", "version": &*state.version })).into_response()
}

async fn create_invoice(
    State(state): State<AppState>,
    Json(new): Json<NewInvoice>,
) -> Result<Response, DbError> {
    if new.customer.trim().is_empty() {
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, "customer must not be empty").into_response());
    }
    let sql = format!(
        "INSERT INTO invoices (customer, amount_cents) VALUES ($1, $2) RETURNING {INVOICE_COLUMNS}"
    );
    let new = &new;
    let sql = sql.as_str();
    let invoice = state
        .db
        .run(|conn| async move {
            let row = conn.client.query_one(sql, &[&new.customer, &new.amount_cents]).await?;
            Invoice::from_row(&row)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(invoice)).into_response())
}

async fn get_invoice(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Response, DbError> {
    let sql = format!("SELECT {INVOICE_COLUMNS} FROM invoices WHERE id = $1");
    let sql = sql.as_str();
    let invoice = state
        .db
        .run(|conn| async move {
            match conn.client.query_opt(sql, &[&id]).await? {
                Some(row) => Invoice::from_row(&row).map(Some),
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
    /// creates the schema, and keeps that connection for the requests.
    #[expect(
        clippy::disallowed_methods,
        reason = "startup retries against a wall-clock budget with backoff; the demo has no clock module"
    )]
    async fn prepare(&self) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + STARTUP_BUDGET;
        let mut backoff = Duration::from_millis(100);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = tokio::time::timeout(STARTUP_ATTEMPT_TIMEOUT, async {
                let conn = self.connect().await?;
                conn.client.batch_execute(SCHEMA).await?;
                Ok::<_, tokio_postgres::Error>(conn)
            })
            .await;
            let error = match result {
                Ok(Ok(conn)) => {
                    *self.current.lock().await = Some(Arc::new(conn));
                    return Ok(());
                }
                Ok(Err(error)) => describe(&error),
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
