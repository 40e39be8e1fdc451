//! The thin edge under the PostgreSQL store's SQL: the connection pool (TLS
//! with rustls when the URL asks for it, a statement timeout on every
//! connection), PostgreSQL's errors in the store's terms, reading a column
//! without a panic, and times as the broker keeps them (to the millisecond).

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::Row;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{FromSql, ToSql};

use crate::domain::text::url_without_password;
use crate::store::{StoreError, StoreResult};

/// How the store reaches the database.
#[derive(Clone)]
pub struct Connect {
    /// `postgres://user:password@host:port/db?sslmode=…` (a secret: never logged).
    pub url: secrecy::SecretString,
    /// Connections kept open at most.
    pub pool_size: usize,
    /// The longest a statement may run before the database cancels it.
    pub statement_timeout: Duration,
    /// Certificates trusted for the database's TLS beside the system's.
    pub ca_file: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for Connect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connect")
            .field("url", &url_without_password(secrecy::ExposeSecret::expose_secret(&self.url)))
            .field("pool_size", &self.pool_size)
            .field("statement_timeout", &self.statement_timeout)
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

/// How every connection to the database is made.
#[derive(Clone)]
pub struct Connector {
    pub config: tokio_postgres::Config,
    pub tls: tokio_postgres_rustls::MakeRustlsConnect,
}

/// A pool of connections to the database `connect` names (none is opened
/// yet), and how to make one more (the change feed's own).
pub fn pool(connect: &Connect) -> StoreResult<(Pool, Connector)> {
    let url = secrecy::ExposeSecret::expose_secret(&connect.url);
    let mut config: tokio_postgres::Config =
        url.parse().map_err(|e| StoreError::Unavailable(format!("database_url ({}) does not parse: {e}", url_without_password(url))))?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(Duration::from_secs(10));
    }
    config.options(format!("-c statement_timeout={}", connect.statement_timeout.as_millis().max(1)));
    config.application_name("jit");
    let tls = tls(connect.ca_file.as_deref())?;
    let connector = Connector { config: config.clone(), tls: tls.clone() };
    let manager = Manager::from_config(config, tls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
    let pool = Pool::builder(manager)
        .max_size(connect.pool_size.max(1))
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(Duration::from_secs(10)))
        .create_timeout(Some(Duration::from_secs(10)))
        .recycle_timeout(Some(Duration::from_secs(5)))
        .build()
        .map_err(|e| StoreError::Unavailable(format!("cannot make the database pool: {e}")))?;
    Ok((pool, connector))
}

/// rustls trusting the system's roots and `ca_file`'s; used when the URL's
/// `sslmode` is `prefer` (the default: TLS when the server offers it) or `require`.
fn tls(ca_file: Option<&Path>) -> StoreResult<tokio_postgres_rustls::MakeRustlsConnect> {
    let config = crate::tls_client::config(ca_file).map_err(|e| StoreError::Unavailable(format!("database_ca_file {e}")))?;
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

/// What the store's SQL runs on: a pooled connection or a transaction on
/// one. Each statement is prepared once per connection and kept (deadpool's
/// statement cache), so running one costs one round trip, not two.
pub trait Sql: Sync {
    fn query(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> impl Future<Output = Result<Vec<Row>, PgError>> + Send;
    fn query_one(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> impl Future<Output = Result<Row, PgError>> + Send;
    fn query_opt(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> impl Future<Output = Result<Option<Row>, PgError>> + Send;
    fn execute(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> impl Future<Output = Result<u64, PgError>> + Send;
}

type PgError = tokio_postgres::Error;

macro_rules! cached_sql {
    ($type:ty, $inner:ty) => {
        impl Sql for $type {
            async fn query(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>, PgError> {
                let statement = self.prepare_cached(sql).await?;
                <$inner>::query(self, &statement, params).await
            }
            async fn query_one(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Row, PgError> {
                let statement = self.prepare_cached(sql).await?;
                <$inner>::query_one(self, &statement, params).await
            }
            async fn query_opt(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Option<Row>, PgError> {
                let statement = self.prepare_cached(sql).await?;
                <$inner>::query_opt(self, &statement, params).await
            }
            async fn execute(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64, PgError> {
                let statement = self.prepare_cached(sql).await?;
                <$inner>::execute(self, &statement, params).await
            }
        }
    };
}

cached_sql!(deadpool_postgres::ClientWrapper, tokio_postgres::Client);
cached_sql!(deadpool_postgres::Transaction<'_>, tokio_postgres::Transaction<'_>);

/// A PostgreSQL error in the store's terms.
pub fn error(e: tokio_postgres::Error) -> StoreError {
    match e.code() {
        Some(code) if *code == SqlState::UNIQUE_VIOLATION => StoreError::AlreadyExists(e.to_string()),
        Some(code) if code.code().starts_with("22") || code.code().starts_with("XX") => {
            // Data exceptions and internal errors (a damaged relation).
            StoreError::Corrupt(db_message(&e))
        }
        Some(_) => StoreError::Unavailable(db_message(&e)),
        None if e.is_closed() => StoreError::Unavailable("the connection to the database closed".into()),
        // "error performing TLS handshake" says nothing without its cause (the certificate, say).
        None => match std::error::Error::source(&e) {
            Some(cause) => StoreError::Unavailable(format!("{e}: {cause}")),
            None => StoreError::Unavailable(e.to_string()),
        },
    }
}

/// The database's own message (tokio-postgres's `Display` says only "db error").
fn db_message(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => e.to_string(),
    }
}

pub fn pool_error(e: deadpool_postgres::PoolError) -> StoreError {
    match e {
        deadpool_postgres::PoolError::Backend(e) => error(e),
        other => StoreError::Unavailable(format!("no database connection: {other}")),
    }
}

/// Column `name` of `row`; a value of the wrong type is a corrupt row, never a panic.
pub fn get<'a, T: FromSql<'a>>(row: &'a Row, name: &str) -> StoreResult<T> {
    row.try_get(name).map_err(|e| StoreError::Corrupt(format!("column {name}: {e}")))
}

pub use crate::store::rows::stored;

pub fn parsed<T: std::str::FromStr>(what: &str, v: &str) -> StoreResult<T> {
    v.parse().map_err(|_| StoreError::Corrupt(format!("bad {what} `{v}`")))
}

/// A count or duration as PostgreSQL keeps it (a signed 64-bit integer).
pub fn int(v: u64) -> StoreResult<i64> {
    i64::try_from(v).map_err(|_| StoreError::Unavailable(format!("{v} is too large to store")))
}

/// A non-negative count read back.
pub fn count(what: &str, v: i64) -> StoreResult<u32> {
    u32::try_from(v).map_err(|_| StoreError::Corrupt(format!("bad {what} {v}")))
}

/// The filters of a listing: only those asked for are written into its SQL
/// (so the planner uses an index for each), each with its numbered parameter.
#[derive(Default)]
pub struct Filters {
    clauses: Vec<String>,
    values: Vec<Box<dyn ToSql + Sync + Send>>,
}

impl Filters {
    /// Adds `clause` (whose one `$` is its parameter) when there is a value.
    pub fn when<T: ToSql + Sync + Send + 'static>(&mut self, clause: &str, value: Option<T>) -> &mut Filters {
        if let Some(value) = value {
            self.values.push(Box::new(value));
            self.clauses.push(clause.replacen('$', &format!("${}", self.values.len()), 1));
        }
        self
    }

    /// `query` with its `{filters}` and `{limit}` written in.
    pub fn sql(&self, query: &str, limit: u32) -> String {
        let filters = if self.clauses.is_empty() { "TRUE".to_string() } else { self.clauses.join(" AND ") };
        query.replace("{filters}", &filters).replace("{limit}", &limit.to_string())
    }

    /// The parameters, in the order of their clauses.
    pub fn params(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.values.iter().map(|v| &**v as &(dyn ToSql + Sync)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_connection_settings_never_show_the_password() {
        let connect = Connect {
            url: "postgres://jit:s3cret@db/jit".to_string().into(),
            pool_size: 4,
            statement_timeout: Duration::from_secs(5),
            ca_file: None,
        };
        assert!(!format!("{connect:?}").contains("s3cret"), "{connect:?}");
    }

    #[test]
    fn filters_number_their_parameters_in_order() {
        let mut f = Filters::default();
        f.when("a = $", Some(1i64)).when("b = $", None::<i64>).when("c < $", Some(3i64));
        assert_eq!(f.sql("SELECT * FROM t WHERE {filters} LIMIT {limit}", 5), "SELECT * FROM t WHERE a = $1 AND c < $2 LIMIT 5");
        assert_eq!(f.params().len(), 2);
        assert_eq!(Filters::default().sql("WHERE {filters}", 1), "WHERE TRUE");
    }
}
