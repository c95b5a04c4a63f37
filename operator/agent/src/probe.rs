//! Measuring the underlay: ICMP echo round trips to the peer nodes' addresses, from the
//! agent's (host) network namespace. The peer's kernel answers, so nothing has to run there.
//! Needs CAP_NET_RAW (the agent is privileged). A reply's time is the kernel's receive
//! timestamp (SO_TIMESTAMPNS, as iputils' ping takes it), not when this thread got to read
//! it: on a busy node the thread's wake-up would add to every round trip, and the links
//! across nodes would be shaped faster than the model by as much.

use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use orbitnet_engine::traffic::{recv_timestamped, wall_ns};

const ECHO_REQUEST: u8 = 8;
const ECHO_REPLY: u8 = 0;

/// The Internet checksum (RFC 1071) of `bytes`.
pub fn checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 =
        bytes.chunks(2).map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]))).sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An echo request with `id` and `seq` and a few bytes of payload.
pub fn echo_request(id: u16, seq: u16) -> Vec<u8> {
    let mut packet = vec![ECHO_REQUEST, 0, 0, 0];
    packet.extend(id.to_be_bytes());
    packet.extend(seq.to_be_bytes());
    packet.extend(b"orbitnet");
    let sum = checksum(&packet);
    packet[2..4].copy_from_slice(&sum.to_be_bytes());
    packet
}

/// The (id, seq) of an echo reply, given what a raw ICMP socket receives: the IPv4 header,
/// then the ICMP message.
pub fn parse_reply(datagram: &[u8]) -> Option<(u16, u16)> {
    let header_len = usize::from(datagram.first()? & 0x0f) * 4;
    let icmp = datagram.get(header_len..)?;
    if icmp.len() < 8 || icmp[0] != ECHO_REPLY {
        return None;
    }
    Some((u16::from_be_bytes([icmp[4], icmp[5]]), u16::from_be_bytes([icmp[6], icmp[7]])))
}

/// A raw ICMP socket for echo round trips.
pub struct Pinger {
    fd: OwnedFd,
    id: u16,
    seq: u16,
}

impl Pinger {
    pub fn new() -> io::Result<Self> {
        // SAFETY: socket(2) with constant arguments; the result is checked before use.
        let fd =
            unsafe { libc::socket(libc::AF_INET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, libc::IPPROTO_ICMP) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd is a fresh, valid descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let on: libc::c_int = 1;
        // SAFETY: a valid descriptor, and an int option passed with its size.
        let set = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_TIMESTAMPNS,
                (&raw const on).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if set < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Self { fd, id: (std::process::id() & 0xffff) as u16, seq: 0 })
    }

    /// One echo round trip to `to`, or `None` if no reply came within `timeout`.
    pub fn round_trip(&mut self, to: Ipv4Addr, timeout: Duration) -> io::Result<Option<Duration>> {
        self.seq = self.seq.wrapping_add(1);
        let packet = echo_request(self.id, self.seq);
        let addr = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: 0,
            sin_addr: libc::in_addr { s_addr: u32::from(to).to_be() },
            sin_zero: [0; 8],
        };
        let sent_at = Instant::now();
        let sent_ns = wall_ns();
        // SAFETY: the buffer and address outlive the call; their lengths are passed.
        let sent = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                packet.as_ptr().cast(),
                packet.len(),
                0,
                (&raw const addr).cast(),
                size_of::<libc::sockaddr_in>() as libc::socklen_t,
            )
        };
        if sent < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut buf = [0u8; 1500];
        loop {
            let left = timeout.saturating_sub(sent_at.elapsed());
            if left.is_zero() {
                return Ok(None);
            }
            let mut poll = libc::pollfd { fd: self.fd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
            let ms = i32::try_from(left.as_millis().max(1)).unwrap_or(i32::MAX);
            // SAFETY: one valid pollfd.
            let ready = unsafe { libc::poll(&raw mut poll, 1, ms) };
            if ready < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            if ready == 0 {
                return Ok(None);
            }
            let Some((n, received_ns)) = recv_timestamped(self.fd.as_raw_fd(), &mut buf) else { continue };
            // Every raw ICMP socket sees every ICMP message: keep only our reply.
            if parse_reply(&buf[..n]) == Some((self.id, self.seq)) {
                // The kernel's time, unless the clock was set meanwhile.
                let elapsed = sent_at.elapsed();
                let kernel = u64::try_from(received_ns - sent_ns).ok().map(Duration::from_nanos);
                return Ok(Some(kernel.filter(|k| *k <= elapsed).unwrap_or(elapsed)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_echo_request_checks_out_and_a_reply_is_recognised() {
        let req = echo_request(0x1234, 7);
        assert_eq!(checksum(&req), 0, "a message with its checksum sums to zero");
        assert_eq!(&req[4..8], &[0x12, 0x34, 0, 7]);
        // A 20-byte IPv4 header, then the reply: the same id and seq, type 0.
        let mut reply = vec![0x45; 1];
        reply.extend([0u8; 19]);
        reply.extend([ECHO_REPLY, 0, 0, 0, 0x12, 0x34, 0, 7]);
        assert_eq!(parse_reply(&reply), Some((0x1234, 7)));
        reply[20] = ECHO_REQUEST;
        assert_eq!(parse_reply(&reply), None, "our own request, seen on loopback, is not a reply");
        assert_eq!(parse_reply(&[0x45, 0]), None);
    }

    #[test]
    fn the_checksum_of_the_rfc_1071_example() {
        // RFC 1071, 3: the words 0001 f203 f4f5 f6f7 sum to ddf2 (one's complement).
        assert_eq!(checksum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]), !0xddf2);
    }
}
