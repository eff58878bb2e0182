//! When a read's bytes arrived, by the kernel's clock: each connection asks the kernel to stamp
//! every segment it receives (`SO_TIMESTAMPNS`), and each read takes the stamp of the last
//! segment it consumed (`recvmsg`'s `SCM_TIMESTAMPNS`). A client that is late to read (a busy
//! core at 1,000 streams, a wake-up that comes late) still records when the bytes came, not
//! when it got to them. Where the kernel gives no stamp (another OS, the option refused), the
//! instant is the one the read returned at, as before.

use std::io;
use std::net::TcpStream;
use std::task::Poll;
use std::time::{Duration, Instant, SystemTime};

use super::Conn;

/// Asks the kernel to stamp the segments this connection receives; false where it will not.
pub(super) fn enable(conn: &TcpStream) -> bool {
    #[cfg(target_os = "linux")]
    {
        use nix::sys::socket::{setsockopt, sockopt::ReceiveTimestampns};
        setsockopt(conn, ReceiveTimestampns, &true).is_ok()
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = conn;
        false
    }
}

/// One read into `buf` once the connection is readable: the bytes read, and when the last of
/// them arrived (the kernel's stamp, else now).
///
/// A read that filled less than `buf` emptied the socket's queue (TCP's receive copies every
/// queued segment while room is left), so the connection's readiness is spent there: the next
/// read waits for the runtime's next event instead of making a system call only to hear
/// `EAGAIN`, one in two of a streamed chunk's reads. Bytes that land after this read raise a
/// new (edge-triggered) event, which clearing the old one does not lose: tokio clears only the
/// readiness of the event this read was woken by.
///
/// The readiness is polled through the connection's single reader slot (`poll_read_ready`), not
/// a `readable()` future, which queues a waiter on a list that each event walks: a connection
/// has one reader, its request's task.
pub(super) async fn read(conn: &Conn, buf: &mut [u8]) -> io::Result<(usize, Instant)> {
    // Room for the one control message, aligned as the kernel writes it, on the stack
    // (`cmsg_space!` would allocate a buffer a read).
    let mut control = Control([0; CONTROL_BYTES]);
    std::future::poll_fn(|cx| {
        loop {
            let mut ready = std::task::ready!(conn.poll_read_ready(cx))?;
            match recv_stamped(conn.get_ref(), buf, &mut control.0) {
                Ok((n, at)) => {
                    if n > 0 && n < buf.len() {
                        ready.clear_ready();
                    }
                    return Poll::Ready(Ok((n, at)));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => ready.clear_ready(),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    })
    .await
}

/// Control-message room: a `cmsghdr` and a `timespec` take 32 bytes on 64-bit Linux.
const CONTROL_BYTES: usize = 64;

#[repr(align(8))]
struct Control([u8; CONTROL_BYTES]);

#[cfg(target_os = "linux")]
fn recv_stamped(
    conn: &TcpStream,
    buf: &mut [u8],
    control: &mut [u8],
) -> io::Result<(usize, Instant)> {
    use std::os::fd::AsRawFd;

    use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};

    debug_assert!(nix::sys::socket::cmsg_space::<nix::sys::time::TimeSpec>() <= control.len());
    let mut iov = [io::IoSliceMut::new(buf)];
    let msg = recvmsg::<()>(conn.as_raw_fd(), &mut iov, Some(control), MsgFlags::empty())
        .map_err(io::Error::from)?;
    let (now, now_wall) = clocks();
    let mut at = now;
    if let Ok(cmsgs) = msg.cmsgs() {
        for c in cmsgs {
            if let ControlMessageOwned::ScmTimestampns(ts) = c
                && let (Ok(secs), Ok(nanos)) =
                    (u64::try_from(ts.tv_sec()), u32::try_from(ts.tv_nsec()))
            {
                at = arrival(now, now_wall, Duration::new(secs, nanos));
            }
        }
    }
    Ok((msg.bytes, at))
}

/// Where the kernel gives no stamp: the instant the read returned.
#[cfg(not(target_os = "linux"))]
fn recv_stamped(conn: &TcpStream, buf: &mut [u8], _: &mut [u8]) -> io::Result<(usize, Instant)> {
    use std::io::Read;
    let n = (&*conn).read(buf)?;
    Ok((n, Instant::now()))
}

/// The wall clock read between two readings of the monotonic one, paired with the later: the
/// two monotonic readings within 20 µs, else the closest pair of a few tries. Read unchecked,
/// a thread preempted between the two clocks (a timer tick on a busy core, milliseconds) would
/// pair a late wall reading with an early instant, and every stamp placed by it would come out
/// early by as much: a TTFT short by milliseconds. Paired this way a stamp can only be placed
/// late, by at most the spread.
fn clocks() -> (Instant, SystemTime) {
    const TIGHT: Duration = Duration::from_micros(20);
    let mut best = (Duration::MAX, Instant::now(), SystemTime::now());
    for _ in 0..4 {
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

/// The monotonic instant of a wall-clock stamp `since_epoch`, by its age against `now_wall`
/// taken with `now`: never after now, and a stamp from the future (the wall clock stepped back)
/// is now.
fn arrival(now: Instant, now_wall: SystemTime, since_epoch: Duration) -> Instant {
    let age = now_wall
        .duration_since(SystemTime::UNIX_EPOCH)
        .ok()
        .and_then(|wall| wall.checked_sub(since_epoch))
        .unwrap_or(Duration::ZERO);
    now.checked_sub(age).unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stamp_is_placed_by_its_age_and_never_in_the_future() {
        let now = Instant::now();
        let wall = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let stamp = Duration::from_secs(1_000_000) - Duration::from_millis(30);
        assert_eq!(arrival(now, wall, stamp), now - Duration::from_millis(30));
        let future = Duration::from_secs(1_000_001);
        assert_eq!(arrival(now, wall, future), now);
    }

    /// A read that fills the buffer leaves the rest readable at once; a read that empties the
    /// socket spends its readiness, and the next read still wakes for bytes sent later, with
    /// their own (later) stamp.
    #[tokio::test]
    async fn a_full_read_reads_on_and_a_short_one_waits_for_the_next_bytes() {
        use std::io::Write;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let client = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (mut server, _) = listener.accept().unwrap();
        let client = client.into_std().unwrap();
        assert!(cfg!(not(target_os = "linux")) || enable(&client));
        let conn = super::super::register(client).unwrap();
        server.write_all(b"0123456789").unwrap();
        let mut buf = [0u8; 4];
        let wait = Duration::from_secs(5);
        let mut got = Vec::new();
        let mut first_at = None;
        while got.len() < 10 {
            let (n, at) = tokio::time::timeout(wait, read(&conn, &mut buf))
                .await
                .unwrap()
                .unwrap();
            got.extend_from_slice(&buf[..n]);
            first_at.get_or_insert(at);
        }
        assert_eq!(got, b"0123456789");
        let sent = Instant::now();
        let later = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(30));
            server.write_all(b"ab").unwrap();
            server
        });
        let (n, at) = tokio::time::timeout(wait, read(&conn, &mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&buf[..n], b"ab");
        assert!(
            at >= sent + Duration::from_millis(25),
            "{:?}",
            at.duration_since(sent)
        );
        assert!(first_at.is_some_and(|f| f < sent));
        drop(later.join().unwrap());
        let (n, _) = tokio::time::timeout(wait, read(&conn, &mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(n, 0, "the peer's close reads as the end");
    }
}
