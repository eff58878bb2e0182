//! Exit codes (DESIGN.md, README "Exit codes") and the typed failures that choose them. [`guard`]
//! runs the process's work and turns its outcome, a panic included, into the code; `main` is
//! the only place that exits with it.
//!
//! | code | meaning |
//! |------|---------|
//! | 0 | success |
//! | 1 | a gate tripped: an `error` finding with `--gate`, a regression with `regress --gate` (later a failed check) |
//! | 2 | usage, input or environment error: a bad flag, a missing or corrupt file, an unknown run, a database another process holds locked, a directory that cannot be written |
//! | 3 | the engine could not be reached, or no request succeeded |
//! | 4 | an internal error: a bug in ceiling (a panic, or an error no class above claims) |

use std::panic::UnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::store::StoreError;

/// What the process exits with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Exit {
    Success = 0,
    /// A regression or an `error` finding, when asked to gate on them.
    Gate = 1,
    /// Bad flags, bad input files, or an environment that stops the command (see the module
    /// docs).
    Usage = 2,
    /// The engine could not be reached or no request succeeded.
    Unreachable = 3,
    /// A bug in ceiling.
    Internal = 4,
}

/// A failure that maps to a specific exit code. An error with none of these (nor a
/// [`StoreError`] or I/O error) in its chain is a bug and exits 4.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Unreachable(String),
}

/// What is said after an internal error's message.
pub const BUG_NOTE: &str = "this is a bug in ceiling: please report it with the command line";

/// The exit code for an error returned by [`crate::run()`]: the first cause in the chain that
/// names a class decides; none, and it is a bug.
pub fn code_for(err: &anyhow::Error) -> Exit {
    err.chain()
        .find_map(|cause| {
            if let Some(f) = cause.downcast_ref::<Failure>() {
                return Some(match f {
                    Failure::Usage(_) => Exit::Usage,
                    Failure::Unreachable(_) => Exit::Unreachable,
                });
            }
            if let Some(e) = cause.downcast_ref::<StoreError>() {
                return store_code(e);
            }
            // Reading or writing a file the user named, binding a port: the environment.
            cause.downcast_ref::<std::io::Error>().map(|_| Exit::Usage)
        })
        .unwrap_or(Exit::Internal)
}

/// A store error is the user's input or environment (a file that is not a database, a run that
/// is not there, a locked, full, read-only or corrupt database) or else a bug (SQL ceiling
/// wrote wrong, a writer thread that died); `None` leaves it to the next cause in the chain.
fn store_code(e: &StoreError) -> Option<Exit> {
    use rusqlite::ErrorCode as C;
    match e {
        StoreError::NotADatabase { .. }
        | StoreError::NotWritable { .. }
        | StoreError::ReadOnlyOldSchema { .. }
        | StoreError::NewerSchema { .. }
        | StoreError::NoSuchRun(_)
        | StoreError::NoSuchResult(_)
        | StoreError::NoRuns
        | StoreError::Json { .. }
        | StoreError::Column { .. } => Some(Exit::Usage),
        StoreError::Sqlite(rusqlite::Error::SqliteFailure(f, _)) => match f.code {
            C::PermissionDenied
            | C::DatabaseBusy
            | C::DatabaseLocked
            | C::ReadOnly
            | C::SystemIoFailure
            | C::DatabaseCorrupt
            | C::DiskFull
            | C::CannotOpen
            | C::FileLockingProtocolFailed
            | C::NotADatabase => Some(Exit::Usage),
            _ => None,
        },
        StoreError::Sqlite(_) | StoreError::WriterGone(_) | StoreError::Frames(_) => None,
    }
}

/// Whether a panic hook of [`install_panic_hook`] has seen a panic on any thread.
static PANICKED: AtomicBool = AtomicBool::new(false);

/// Reports every panic, on any thread, as a bug (after the standard message with its location)
/// and remembers it, so [`guard`] exits 4 even when the panicking thread's work was not needed
/// for the result.
pub fn install_panic_hook() {
    let standard = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICKED.store(true, Ordering::SeqCst);
        standard(info);
        eprintln!("error: ceiling panicked ({BUG_NOTE})");
    }));
}

/// Runs the process's work and gives its exit code, printing the error: a typed error's class,
/// an untyped one or a panic as an internal error (4) with [`BUG_NOTE`].
pub fn guard(work: impl FnOnce() -> anyhow::Result<Exit> + UnwindSafe) -> Exit {
    let outcome = std::panic::catch_unwind(work);
    let exit = match outcome {
        Ok(Ok(exit)) => exit,
        Ok(Err(err)) => {
            let exit = code_for(&err);
            // An error may quote the engine or a file: no control sequence reaches the terminal.
            let text = crate::printable::printable(&format!("{err:#}")).into_owned();
            if exit == Exit::Internal {
                eprintln!("error: {text} ({BUG_NOTE})");
            } else {
                eprintln!("error: {text}");
            }
            exit
        }
        // The hook has printed the panic and the note.
        Err(_) => Exit::Internal,
    };
    if PANICKED.load(Ordering::SeqCst) {
        Exit::Internal
    } else {
        exit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sqlite(code: i32) -> anyhow::Error {
        StoreError::Sqlite(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(code),
            None,
        ))
        .into()
    }

    #[test]
    fn an_untyped_error_is_a_bug() {
        let err = anyhow::anyhow!("index out of range").context("analysing run 3");
        assert_eq!(code_for(&err), Exit::Internal);
        let parse: anyhow::Error = "x".parse::<u32>().unwrap_err().into();
        assert_eq!(code_for(&parse), Exit::Internal);
    }

    #[test]
    fn typed_failures_choose_their_code_through_context() {
        let usage = anyhow::Error::from(Failure::Usage("--dp must be at least 1".into()));
        assert_eq!(code_for(&usage.context("reading flags")), Exit::Usage);
        let down = anyhow::Error::from(Failure::Unreachable("connection refused".into()));
        assert_eq!(code_for(&down), Exit::Unreachable);
        let io = std::io::Error::new(std::io::ErrorKind::PermissionDenied, "denied");
        assert_eq!(code_for(&anyhow::Error::from(io)), Exit::Usage);
        assert_eq!(
            code_for(&StoreError::NoSuchRun(9).into()),
            Exit::Usage,
            "an unknown run is the user's input"
        );
    }

    #[test]
    fn sqlite_errors_split_into_environment_and_bugs() {
        assert_eq!(code_for(&sqlite(rusqlite::ffi::SQLITE_BUSY)), Exit::Usage);
        assert_eq!(
            code_for(&sqlite(rusqlite::ffi::SQLITE_CORRUPT)),
            Exit::Usage
        );
        assert_eq!(code_for(&sqlite(rusqlite::ffi::SQLITE_FULL)), Exit::Usage);
        assert_eq!(
            code_for(&sqlite(rusqlite::ffi::SQLITE_MISUSE)),
            Exit::Internal
        );
        assert_eq!(
            code_for(&sqlite(rusqlite::ffi::SQLITE_CONSTRAINT)),
            Exit::Internal
        );
        let gone: anyhow::Error = StoreError::WriterGone("channel closed".into()).into();
        assert_eq!(code_for(&gone), Exit::Internal);
    }

    #[test]
    fn guard_maps_results_errors_and_panics() {
        assert_eq!(guard(|| Ok(Exit::Gate)), Exit::Gate);
        assert_eq!(
            guard(|| Err(Failure::Unreachable("refused".into()).into())),
            Exit::Unreachable
        );
        assert_eq!(
            guard(|| Err(anyhow::anyhow!("no such step"))),
            Exit::Internal
        );
        assert_eq!(
            guard(|| -> anyhow::Result<Exit> { panic!("a bug") }),
            Exit::Internal
        );
    }
}
