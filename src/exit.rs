//! Exit codes (DESIGN.md) and the typed failures that choose them. `main` is the only place that
//! turns these into a process exit.

/// What the process exits with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Exit {
    Success = 0,
    /// A regression or an `error` finding, when asked to gate on them.
    Gate = 1,
    /// Bad flags or bad input files.
    Usage = 2,
    /// The engine could not be reached or no request succeeded.
    Unreachable = 3,
}

/// A failure that maps to a specific exit code. Anything else exits 1.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Unreachable(String),
}

/// The exit code for an error returned by [`crate::run()`].
pub fn code_for(err: &anyhow::Error) -> Exit {
    use crate::store::StoreError;
    for cause in err.chain() {
        if let Some(f) = cause.downcast_ref::<Failure>() {
            return match f {
                Failure::Usage(_) => Exit::Usage,
                Failure::Unreachable(_) => Exit::Unreachable,
            };
        }
        if let Some(
            StoreError::NotADatabase { .. }
            | StoreError::NewerSchema { .. }
            | StoreError::NoSuchRun(_)
            | StoreError::NoRuns,
        ) = cause.downcast_ref::<StoreError>()
        {
            return Exit::Usage;
        }
    }
    Exit::Gate
}
