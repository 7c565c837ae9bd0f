//! The store's error type: every failure of opening, writing or reading, as a plain value.

use std::fmt;

/// An error from the store. SQLite errors are carried as text so no rusqlite type leaks out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// SQLite reported an error (message includes the SQLite text).
    Sqlite(String),
    /// The linked SQLite library is older than the store requires.
    SqliteTooOld {
        found: String,
        required: &'static str,
    },
    /// The database was written by a newer vwed (its `user_version` is newer than this binary's).
    SchemaTooNew { found: i64, supported: i64 },
    /// A uniqueness or reference rule was broken (label taken, unknown task, ...).
    Conflict(String),
    /// The named thing does not exist.
    NotFound(String),
    /// The store was closed (or its writer stopped); nothing more can be written.
    Closed,
    /// A bound from `limits.rs` was reached; `name` is the constant, `value` its value.
    Limit { name: &'static str, value: u64 },
    /// File system error while preparing the database location.
    Io(String),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Sqlite(m) => write!(f, "sqlite: {m}"),
            StoreError::SqliteTooOld { found, required } => write!(
                f,
                "SQLite {found} is too old: {required} or newer is required (older versions can \
                 corrupt a WAL database)"
            ),
            StoreError::SchemaTooNew { found, supported } => write!(
                f,
                "database schema version {found} was written by a newer vwed; this binary \
                 supports up to {supported}"
            ),
            StoreError::Conflict(m) => write!(f, "conflict: {m}"),
            StoreError::NotFound(m) => write!(f, "not found: {m}"),
            StoreError::Closed => write!(f, "store is closed"),
            StoreError::Limit { name, value } => write!(f, "limit {name} ({value}) reached"),
            StoreError::Io(m) => write!(f, "io: {m}"),
        }
    }
}

impl std::error::Error for StoreError {}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        use rusqlite::ErrorCode;
        match e.sqlite_error_code() {
            Some(ErrorCode::ConstraintViolation) => StoreError::Conflict(e.to_string()),
            Some(ErrorCode::OutOfMemory) => StoreError::Limit {
                name: "SQLITE_HARD_HEAP_LIMIT_BYTES",
                value: crate::limits::SQLITE_HARD_HEAP_LIMIT_BYTES as u64,
            },
            _ => StoreError::Sqlite(e.to_string()),
        }
    }
}

impl From<r2d2::Error> for StoreError {
    fn from(_: r2d2::Error) -> Self {
        StoreError::Limit {
            name: "READ_CONNECTION_WAIT_MS",
            value: crate::limits::READ_CONNECTION_WAIT_MS,
        }
    }
}

/// Shorthand used throughout the store.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A limit error for a byte length, or Ok.
pub(crate) fn check_len(len: usize, name: &'static str, max: usize) -> Result<()> {
    if len > max {
        return Err(StoreError::Limit {
            name,
            value: max as u64,
        });
    }
    Ok(())
}

/// Cuts `s` to at most `max` bytes on a char boundary, ending with a marker when cut.
pub(crate) fn truncate_marked(s: &str, max: usize) -> std::borrow::Cow<'_, str> {
    const MARK: &str = "…[truncated]";
    if s.len() <= max {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut end = max.saturating_sub(MARK.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    std::borrow::Cow::Owned(format!("{}{MARK}", &s[..end]))
}

/// A count or limit as SQLite's integer, saturating (`usize::MAX` means "no limit", not -1).
pub(crate) fn n64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
