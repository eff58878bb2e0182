//! Opening a recording that cannot be written (a read-only file system, a file or directory
//! without write permission): the reading commands (`analyze`, `report`, `runs`, `history`,
//! `regress`, `export`, ...) read it as it is. A WAL database on read-only media opens in
//! SQLite's `mode=ro` where its `-wal` and `-shm` files are there, else as `immutable` (after a
//! clean close the log is checkpointed and gone, so the main file is the whole recording).
//! Nothing is migrated: a schema older than this `ceiling`'s is an error that says to copy the
//! file somewhere writable.

use std::path::Path;

use rusqlite::{Connection, OpenFlags};

use super::schema::CURRENT_VERSION;
use super::{Store, StoreError};

impl Store {
    /// Opens `path` to write ([`Store::open`]), else, where the file exists but cannot be
    /// written, to read only: [`Store::is_read_only`] then says that nothing will be stored
    /// (findings and kept results of an analysis included).
    pub fn open_to_read(path: &Path) -> Result<Store, StoreError> {
        match Store::open(path) {
            Err(StoreError::NotWritable { source, .. }) => open_read_only(path).map_err(|e| {
                // The read-only attempt's error says more only where it is not the same wall.
                match e {
                    StoreError::Sqlite(_) => StoreError::NotWritable {
                        path: path.to_path_buf(),
                        source,
                    },
                    e => e,
                }
            }),
            other => other,
        }
    }

    /// Whether the database was opened to read only: analyses are not stored.
    pub fn is_read_only(&self) -> bool {
        self.read_uri.is_some()
    }

    /// A second connection that only reads this store's file (the chunk reader's).
    pub(super) fn reader(&self) -> rusqlite::Result<Connection> {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        match &self.read_uri {
            Some(uri) => Connection::open_with_flags(uri, flags | OpenFlags::SQLITE_OPEN_URI),
            None => Connection::open_with_flags(&self.path, flags),
        }
    }
}

fn open_read_only(path: &Path) -> Result<Store, StoreError> {
    let (conn, uri) = connect(path, false).or_else(|_| connect(path, true))?;
    let version: u32 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version != CURRENT_VERSION {
        return Err(StoreError::ReadOnlyOldSchema {
            path: path.to_path_buf(),
            found: version,
            known: CURRENT_VERSION,
        });
    }
    eprintln!(
        "note: {} cannot be written: reading it as it is (the analysis is not stored)",
        path.display()
    );
    Ok(Store {
        conn,
        path: path.to_path_buf(),
        held: std::sync::Mutex::new(Vec::new()),
        read_uri: Some(uri),
    })
}

/// A read-only connection that has read the schema (the first read is where a WAL database
/// without its `-shm` on read-only media fails), and its URI.
fn connect(path: &Path, immutable: bool) -> Result<(Connection, String), StoreError> {
    let mut uri = format!("file:{}?mode=ro", uri_path(path));
    if immutable {
        uri.push_str("&immutable=1");
    }
    let conn = Connection::open_with_flags(
        &uri,
        OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    let _: u32 = conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))?;
    Ok((conn, uri))
}

/// `path` as the path of an SQLite `file:` URI: `%`, `?` and `#` percent-encoded.
fn uri_path(path: &Path) -> String {
    let mut out = String::new();
    for c in path.to_string_lossy().chars() {
        match c {
            '%' => out.push_str("%25"),
            '?' => out.push_str("%3f"),
            '#' => out.push_str("%23"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_path_encodes_what_a_uri_would_split_on() {
        assert_eq!(
            uri_path(Path::new("/a b/c%d?e#f.db")),
            "/a b/c%25d%3fe%23f.db"
        );
    }

    #[test]
    fn a_database_opened_read_only_reads_and_refuses_writes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("odd?name#.db");
        {
            let s = Store::open(&db).expect("open");
            assert!(!s.is_read_only());
        }
        let s = open_read_only(&db).expect("read only");
        assert!(s.is_read_only());
        assert!(s.conn().execute("DELETE FROM runs", []).is_err());
        let n: i64 = s
            .conn()
            .query_row("SELECT count(*) FROM runs", [], |r| r.get(0))
            .expect("reads");
        assert_eq!(n, 0);
    }

    #[test]
    fn an_older_schema_cannot_be_read_without_writing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("old.db");
        Connection::open(&db)
            .and_then(|c| c.execute_batch("CREATE TABLE t (x); PRAGMA user_version = 1;"))
            .expect("old file");
        let e = open_read_only(&db).err().expect("refused");
        assert!(e.to_string().contains("copy it"), "{e}");
    }
}
