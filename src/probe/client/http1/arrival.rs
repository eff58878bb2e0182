//! When a read's bytes arrived, by the kernel's clock: each connection asks the kernel to stamp
//! every segment it receives (`SO_TIMESTAMPNS`), and each read takes the stamp of the last
//! segment it consumed (`recvmsg`'s `SCM_TIMESTAMPNS`). A client that is late to read (a busy
//! core at 1,000 streams, a wake-up that comes late) still records when the bytes came, not
//! when it got to them. Where the kernel gives no stamp (another OS, the option refused), the
//! instant is the one the read returned at, as before.

use std::io;
use std::time::{Duration, Instant, SystemTime};

use tokio::net::TcpStream;

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
pub(super) async fn read(conn: &TcpStream, buf: &mut [u8]) -> io::Result<(usize, Instant)> {
    #[cfg(target_os = "linux")]
    {
        // Room for the one control message, aligned as the kernel writes it, on the stack
        // (`cmsg_space!` would allocate a buffer a read).
        let mut control = Control([0; CONTROL_BYTES]);
        debug_assert!(nix::sys::socket::cmsg_space::<nix::sys::time::TimeSpec>() <= CONTROL_BYTES);
        conn.async_io(tokio::io::Interest::READABLE, || {
            recv_stamped(conn, buf, &mut control.0)
        })
        .await
    }
    #[cfg(not(target_os = "linux"))]
    {
        conn.readable().await?;
        loop {
            match conn.try_read(buf) {
                Ok(n) => return Ok((n, Instant::now())),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => conn.readable().await?,
                Err(e) => return Err(e),
            }
        }
    }
}

/// Control-message room: a `cmsghdr` and a `timespec` take 32 bytes on 64-bit Linux.
#[cfg(target_os = "linux")]
const CONTROL_BYTES: usize = 64;

#[cfg(target_os = "linux")]
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
}
