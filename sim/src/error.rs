//! The simulator's one error type: a profile or fault setting it cannot run with, or a resource
//! (file, thread, socket, runtime, the router's HTTP client) it could not get. Messages name the
//! flag or file to fix.

use std::net::IpAddr;
use std::path::PathBuf;

/// Why the simulator could not be configured or started.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// A profile parameter that makes no runnable engine.
    #[error("{0}")]
    Profile(String),
    #[error("cannot read profile {}", path.display())]
    ReadProfile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid profile {}", path.display())]
    ParseProfile {
        path: PathBuf,
        #[source]
        source: toml::de::Error,
    },
    /// A profile file that parsed but does not validate.
    #[error("invalid profile {}", path.display())]
    ProfileFile {
        path: PathBuf,
        #[source]
        source: Box<SimError>,
    },
    /// A fault rate or the `--fault-stall` form that cannot be used.
    #[error("{0}")]
    Fault(String),
    #[error("--dp must be at least 1")]
    NoRanks,
    #[error("--time-scale must be a positive number")]
    TimeScale,
    #[error("cannot start a scheduler thread")]
    SchedulerThread(#[source] std::io::Error),
    #[error("cannot listen on {host}:{port}")]
    Bind {
        host: IpAddr,
        port: u16,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start the simulator's runtime")]
    Runtime(#[source] std::io::Error),
    /// A router given no server for one side (`prefill` or `decode`).
    #[error("the router needs at least one {0} server")]
    NoUpstream(&'static str),
    #[error("--handoff must be a finite, non-negative duration")]
    Handoff,
    #[error("cannot build the router's HTTP client")]
    HttpClient(#[source] reqwest::Error),
    /// The bound socket could not be handed to the server's runtime.
    #[error(transparent)]
    Listener(std::io::Error),
}
