//! Serving an axum app the way every simulated process does: a socket bound up front (so the
//! caller knows its port before building the app), a runtime of its own with two worker threads,
//! TCP_NODELAY and the kernel's receive stamps on each
//! connection (`received.rs`), and a graceful stop. It owns no routes.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use tokio_util::sync::CancellationToken;

use crate::SimError;

/// A bound socket, not yet served.
pub(crate) struct Bound {
    listener: std::net::TcpListener,
    pub addr: SocketAddr,
}

/// Binds `host:port` (0 picks a free port).
pub(crate) fn bind(host: IpAddr, port: u16) -> Result<Bound, SimError> {
    let listener = std::net::TcpListener::bind((host, port)).map_err(|source| SimError::Bind {
        host,
        port,
        source,
    })?;
    listener.set_nonblocking(true).map_err(SimError::Listener)?;
    let addr = listener.local_addr().map_err(SimError::Listener)?;
    Ok(Bound { listener, addr })
}

/// An app being served on its own runtime.
pub(crate) struct Server {
    pub addr: SocketAddr,
    cancel: CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
    runtime: Option<tokio::runtime::Runtime>,
}

/// Serves `app` on `bound`; `what` names the server in its thread names and warnings.
pub(crate) fn serve(bound: Bound, app: axum::Router, what: &str) -> Result<Server, SimError> {
    // The server gets its own runtime, as a real engine is its own process: clients in the
    // same process (tests, `ceiling demo`) then do not delay its streams, nor it theirs.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(format!("{what}-http"))
        .enable_all()
        .build()
        .map_err(SimError::Runtime)?;
    let listener = {
        let _guard = runtime.enter();
        tokio::net::TcpListener::from_std(bound.listener).map_err(SimError::Listener)?
    };
    let cancel = CancellationToken::new();
    let stop = cancel.clone().cancelled_owned();
    let listener = crate::received::StampedListener(listener);
    let what = what.to_string();
    let task = runtime.spawn(async move {
        if let Err(err) = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<crate::received::Received>(),
        )
        .with_graceful_shutdown(stop)
        .await
        {
            eprintln!("warning: {what} server stopped: {err}");
        }
    });
    Ok(Server {
        addr: bound.addr,
        cancel,
        task: Some(task),
        runtime: Some(runtime),
    })
}

impl Server {
    /// `http://HOST:PORT`, with a loopback host when bound to an unspecified address.
    pub fn base_url(&self) -> String {
        let ip = if self.addr.ip().is_unspecified() {
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        } else {
            self.addr.ip()
        };
        format!("http://{}", SocketAddr::new(ip, self.addr.port()))
    }

    /// Stops accepting, lets open responses end, then drops the runtime.
    pub async fn shutdown(&mut self) {
        self.cancel.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        self.abort();
    }

    /// Stops at once, without waiting.
    pub fn abort(&mut self) {
        self.cancel.cancel();
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.abort();
    }
}
