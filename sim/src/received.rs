//! When a request's bytes reached the simulator's host, by the kernel's clock. Each accepted
//! connection asks the kernel to stamp the segments it receives (`SO_TIMESTAMPNS`); each read
//! keeps the wall-clock stamp of the last segment it took ([`Received`]); a handler reads its
//! connection's stamp as the instant its request's last byte arrived, and measures its age from
//! a wall-clock reading paired with its own monotonic arrival ([`paired_now`]).
//!
//! The handler's own `Instant::now()` is later by whatever the request waited for first: in the
//! socket's queue, for the server's threads to accept, read and route it. At 1,000 requests sent
//! at once that wait reaches milliseconds on one core, and a client's TTFT (taken from its send)
//! includes it. `/sim/requests` gives it per response (`socket_wait_s`), so that a client's TTFT
//! can be checked against the server's from the request's receipt, not from its handler.
//!
//! Written here, not shared with the probe's own stamped reads: the ground truth borrows no
//! code from what it checks.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant, SystemTime};

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// A listener whose connections stamp their reads, with TCP_NODELAY set on each: each token
/// goes out as its own small write, and Nagle's algorithm would hold a chunk back until the
/// previous one is acknowledged.
pub(crate) struct StampedListener(pub TcpListener);

impl Listener for StampedListener {
    type Io = StampedStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (StampedStream, SocketAddr) {
        let (io, addr) = Listener::accept(&mut self.0).await;
        let _ = io.set_nodelay(true);
        let stamped = enable(&io);
        let io = StampedStream {
            io,
            stamped,
            last: Received::default(),
        };
        (io, addr)
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }
}

/// The wall-clock stamp of the last segment a connection's reads took; `None` before its first
/// stamped read, or where the kernel gives no stamps.
#[derive(Clone, Default, Debug)]
pub(crate) struct Received(Arc<Mutex<Option<SystemTime>>>);

impl Received {
    /// How long before `wall` the last stamped segment arrived; `None` without a stamp, and
    /// zero where the stamp is later than `wall`. Both are wall-clock readings, so nothing that
    /// happens between this call and `wall` (a preempted thread) enters the figure.
    pub fn age_at(&self, wall: SystemTime) -> Option<Duration> {
        let stamp = (*self.0.lock().ok()?)?;
        Some(wall.duration_since(stamp).unwrap_or(Duration::ZERO))
    }

    fn set(&self, stamp: SystemTime) {
        if let Ok(mut last) = self.0.lock() {
            *last = Some(stamp);
        }
    }
}

impl Connected<IncomingStream<'_, StampedListener>> for Received {
    fn connect_info(stream: IncomingStream<'_, StampedListener>) -> Self {
        stream.io().last.clone()
    }
}

/// The monotonic and the wall clock read together: the wall clock between two readings of the
/// monotonic one that lie within 20 µs (or the closest of a few tries), paired with the later.
/// A thread preempted between two unchecked readings would pair a wall clock read milliseconds
/// late with the monotonic instant, and every age measured against it would grow by as much;
/// paired this way an age can only come out short, by at most the spread.
pub(crate) fn paired_now() -> (Instant, SystemTime) {
    const TIGHT: Duration = Duration::from_micros(20);
    let mut best = (Duration::MAX, Instant::now(), SystemTime::now());
    for _ in 0..8 {
        let before = Instant::now();
        let wall = SystemTime::now();
        let after = Instant::now();
        let spread = after.duration_since(before);
        if spread <= TIGHT {
            return (after, wall);
        }
        if spread < best.0 {
            best = (spread, after, wall);
        }
    }
    (best.1, best.2)
}

/// An accepted connection whose reads keep the kernel's receive stamp.
pub(crate) struct StampedStream {
    io: TcpStream,
    /// The kernel agreed to stamp this connection's segments.
    stamped: bool,
    last: Received,
}

impl AsyncRead for StampedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.stamped {
            return Pin::new(&mut this.io).poll_read(cx, buf);
        }
        loop {
            ready!(this.io.poll_read_ready(cx))?;
            let room = buf.initialize_unfilled();
            match this
                .io
                .try_io(Interest::READABLE, || recv_stamped(&this.io, room))
            {
                Ok((n, stamp)) => {
                    buf.advance(n);
                    if let Some(stamp) = stamp {
                        this.last.set(stamp);
                    }
                    return Poll::Ready(Ok(()));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl AsyncWrite for StampedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

#[cfg(target_os = "linux")]
fn enable(io: &TcpStream) -> bool {
    use nix::sys::socket::{setsockopt, sockopt::ReceiveTimestampns};
    setsockopt(io, ReceiveTimestampns, &true).is_ok()
}

#[cfg(not(target_os = "linux"))]
fn enable(_: &TcpStream) -> bool {
    false
}

/// One `recvmsg`: the bytes read and the stamp of the last segment they came in.
#[cfg(target_os = "linux")]
fn recv_stamped(io: &TcpStream, room: &mut [u8]) -> io::Result<(usize, Option<SystemTime>)> {
    use std::os::fd::AsRawFd;

    use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};
    use nix::sys::time::TimeSpec;

    let mut space = nix::cmsg_space!(TimeSpec);
    let mut iov = [io::IoSliceMut::new(room)];
    let msg = recvmsg::<()>(
        io.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::empty(),
    )
    .map_err(io::Error::from)?;
    let stamp = msg.cmsgs().ok().and_then(|mut c| {
        c.find_map(|m| match m {
            ControlMessageOwned::ScmTimestampns(ts) => {
                let secs = u64::try_from(ts.tv_sec()).ok()?;
                let nanos = u32::try_from(ts.tv_nsec()).ok()?;
                SystemTime::UNIX_EPOCH.checked_add(Duration::new(secs, nanos))
            }
            _ => None,
        })
    });
    Ok((msg.bytes, stamp))
}

#[cfg(not(target_os = "linux"))]
fn recv_stamped(_: &TcpStream, _: &mut [u8]) -> io::Result<(usize, Option<SystemTime>)> {
    Err(io::Error::from(io::ErrorKind::Unsupported))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn age_is_measured_against_the_wall_clock_given_not_a_later_one() {
        let r = Received::default();
        let wall = SystemTime::now();
        assert_eq!(r.age_at(wall), None, "no stamp yet");
        r.set(wall - Duration::from_millis(3));
        // Read long after `wall`: the age is still the 3 ms before it.
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(r.age_at(wall), Some(Duration::from_millis(3)));
        r.set(wall + Duration::from_millis(1));
        assert_eq!(
            r.age_at(wall),
            Some(Duration::ZERO),
            "a stamp after the reading"
        );
    }
}
