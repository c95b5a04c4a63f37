//! A NETLINK_ROUTE socket in one network namespace. Requests go out in batches, many
//! messages per send; one failure does not stop the rest, and every error carries the
//! kernel's errno and its extended-ack message.
//!
//! Batches ask for no acknowledgement of success: the kernel answers a request without
//! NLM_F_ACK only when it fails, and a closing NLMSG_NOOP with NLM_F_ACK is answered after
//! every request before it (net/netlink/af_netlink.c, netlink_rcv_skb). A netlink socket
//! hands out one message per receive, so a batch of n costs one receive, not n.

use std::io;
use std::os::fd::AsRawFd;

use netlink_packet_core::{
    NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload,
};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};

use crate::netns::{Netns, NetnsError};

const NLMSG_HDRLEN: usize = 16;
const NLMSG_NOOP: u16 = 1;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLMSG_OVERRUN: u16 = 4;
/// In an NLMSG_ERROR: the echoed request is cut to its header (we ask for that).
const NLM_F_CAPPED: u16 = 0x100;
/// In an NLMSG_ERROR: extended-ack attributes follow the echoed request.
const NLM_F_ACK_TLVS: u16 = 0x200;
const NLMSGERR_ATTR_MSG: u16 = 1;
/// Requests per send. The kernel answers a whole send before `send` returns, so every
/// acknowledgement of a window must fit the receive buffer (each costs ~1 KiB of it).
const WINDOW: usize = 1024;
/// Bytes per send, well under the default socket send buffer (a larger send is EMSGSIZE).
const WINDOW_BYTES: usize = 64 << 10;
const RECV_BUFFER_BYTES: usize = 8 << 20;

/// What went wrong with a request.
#[derive(Debug, thiserror::Error)]
pub enum NlError {
    #[error("{what} in {netns}: {}{}", io::Error::from_raw_os_error(*.errno), .ext.as_ref().map(|m| format!(": {m}")).unwrap_or_default())]
    Kernel { what: String, netns: String, errno: i32, ext: Option<String> },
    #[error("{what} in {netns}: {source}")]
    Io { what: String, netns: String, source: io::Error },
    #[error("{what} in {netns}: not sent: {message}")]
    Invalid { what: String, netns: String, message: String },
    #[error("{what} in {netns}: cannot decode the kernel's answer: {message}")]
    Decode { what: String, netns: String, message: String },
    #[error(transparent)]
    Netns(#[from] NetnsError),
}

impl NlError {
    /// The kernel's errno, for a refusal by the kernel.
    pub fn errno(&self) -> Option<i32> {
        match self {
            NlError::Kernel { errno, .. } => Some(*errno),
            _ => None,
        }
    }
}

/// One request: a message, its flags beyond REQUEST and ACK, and a description for errors.
#[derive(Debug, Clone)]
pub struct Request {
    pub what: String,
    pub message: RouteNetlinkMessage,
    pub flags: u16,
}

impl Request {
    pub fn new(what: impl Into<String>, message: RouteNetlinkMessage, flags: u16) -> Self {
        Self { what: what.into(), message, flags }
    }
}

pub struct Conn {
    socket: Socket,
    next_seq: u32,
    netns: String,
    tx: Vec<u8>,
    rx: Vec<u8>,
}

impl Conn {
    /// A socket in the namespace this thread is in.
    pub fn open_here(label: &str) -> Result<Self, NlError> {
        let io =
            |source| NlError::Io { what: "opening a netlink socket".into(), netns: label.into(), source };
        let mut socket = Socket::new(NETLINK_ROUTE).map_err(io)?;
        socket.bind_auto().map_err(io)?;
        socket.connect(&SocketAddr::new(0, 0)).map_err(io)?;
        // Best effort: an old kernel without extended acks still reports the errno.
        let _ = socket.set_ext_ack(true);
        let _ = socket.set_cap_ack(true);
        force_receive_buffer(&socket, RECV_BUFFER_BYTES).map_err(io)?;
        Ok(Self { socket, next_seq: 1, netns: label.into(), tx: Vec::new(), rx: vec![0; 1 << 16] })
    }

    /// A socket in `ns` (it stays there; this thread does not).
    pub fn open_in(ns: &Netns) -> Result<Self, NlError> {
        let label = ns.label();
        ns.enter(|| Self::open_here(&label))?
    }

    pub fn netns(&self) -> &str {
        &self.netns
    }

    /// Sends one request and waits for its acknowledgement.
    pub fn execute(&mut self, request: Request) -> Result<(), NlError> {
        self.batch(vec![request]).pop().unwrap_or(Ok(()))
    }

    /// Sends all requests, up to `WINDOW` of them and `WINDOW_BYTES` per send, and returns
    /// each one's result, in order.
    pub fn batch(&mut self, requests: Vec<Request>) -> Vec<Result<(), NlError>> {
        let mut results = Vec::with_capacity(requests.len());
        let mut window = Vec::new();
        self.tx.clear();
        for r in requests {
            let seq = self.next_seq;
            self.next_seq = self.next_seq.wrapping_add(1);
            append(&mut self.tx, r.message, r.flags | NLM_F_REQUEST, seq);
            window.push(r.what);
            if window.len() == WINDOW || self.tx.len() >= WINDOW_BYTES {
                results.extend(self.send_window(&window));
                window.clear();
                self.tx.clear();
            }
        }
        if !window.is_empty() {
            results.extend(self.send_window(&window));
        }
        results
    }

    /// Sends the messages in `self.tx`, whose sequence numbers end just before
    /// `self.next_seq`, closed by an acknowledged no-op; collects the errors until the
    /// no-op's acknowledgement.
    fn send_window(&mut self, window: &[String]) -> Vec<Result<(), NlError>> {
        let first = self.next_seq.wrapping_sub(window.len() as u32);
        let barrier = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        append_noop(&mut self.tx, barrier);
        let mut results: Vec<Option<Result<(), NlError>>> = (0..window.len()).map(|_| None).collect();
        if let Err(source) = self.socket.send(&self.tx, 0) {
            return window
                .iter()
                .map(|what| {
                    Err(NlError::Io {
                        what: what.clone(),
                        netns: self.netns.clone(),
                        source: io::Error::new(source.kind(), source.to_string()),
                    })
                })
                .collect();
        }
        let mut done = false;
        while !done {
            let n = match self.socket.recv(&mut &mut self.rx[..], 0) {
                Ok(n) => n,
                Err(source) => {
                    // The kernel dropped answers (ENOBUFS) or the socket broke: whatever was
                    // not acknowledged has an unknown fate, and says so.
                    for (k, slot) in results.iter_mut().enumerate().filter(|(_, s)| s.is_none()) {
                        *slot = Some(Err(NlError::Io {
                            what: window[k].clone(),
                            netns: self.netns.clone(),
                            source: io::Error::new(source.kind(), format!("no acknowledgement: {source}")),
                        }));
                    }
                    break;
                }
            };
            for msg in Messages::new(&self.rx[..n]).filter(|m| m.kind == NLMSG_ERROR) {
                if msg.seq == barrier {
                    done = true;
                    continue;
                }
                let k = msg.seq.wrapping_sub(first) as usize;
                if let (Some(slot), Some((errno, ext))) = (results.get_mut(k), msg.error()) {
                    *slot = Some(Err(NlError::Kernel {
                        what: window[k].clone(),
                        netns: self.netns.clone(),
                        errno,
                        ext,
                    }));
                }
            }
        }
        // Not refused before the barrier was answered: done.
        results.into_iter().map(|r| r.unwrap_or(Ok(()))).collect()
    }

    /// Sends a get or dump request and returns the messages the kernel answers with.
    pub fn query(
        &mut self,
        what: &str,
        message: RouteNetlinkMessage,
        dump: bool,
    ) -> Result<Vec<RouteNetlinkMessage>, NlError> {
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        let flags = NLM_F_REQUEST | if dump { NLM_F_DUMP } else { NLM_F_ACK };
        self.tx.clear();
        append(&mut self.tx, message, flags, seq);
        let fail = |source| NlError::Io { what: what.into(), netns: self.netns.clone(), source };
        self.socket.send(&self.tx, 0).map_err(fail)?;
        let mut out = Vec::new();
        loop {
            let n = self.socket.recv(&mut &mut self.rx[..], 0).map_err(|source| NlError::Io {
                what: what.into(),
                netns: self.netns.clone(),
                source,
            })?;
            for msg in Messages::new(&self.rx[..n]) {
                if msg.seq != seq {
                    continue;
                }
                match msg.kind {
                    NLMSG_ERROR | NLMSG_DONE => {
                        return match msg.error() {
                            None => Ok(out),
                            Some((errno, ext)) => Err(NlError::Kernel {
                                what: what.into(),
                                netns: self.netns.clone(),
                                errno,
                                ext,
                            }),
                        };
                    }
                    NLMSG_NOOP | NLMSG_OVERRUN => {}
                    _ => match NetlinkMessage::<RouteNetlinkMessage>::deserialize(msg.bytes) {
                        Ok(m) => {
                            if let NetlinkPayload::InnerMessage(inner) = m.payload {
                                out.push(inner);
                            }
                        }
                        Err(e) => {
                            return Err(NlError::Decode {
                                what: what.into(),
                                netns: self.netns.clone(),
                                message: e.to_string(),
                            });
                        }
                    },
                }
            }
        }
    }
}

fn append(buf: &mut Vec<u8>, message: RouteNetlinkMessage, flags: u16, seq: u32) {
    let mut header = NetlinkHeader::default();
    header.flags = flags;
    header.sequence_number = seq;
    let mut nl = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(message));
    nl.finalize();
    let start = buf.len();
    buf.resize(start + nl.buffer_len(), 0);
    nl.serialize(&mut buf[start..]);
    // Messages in one send start on 4-byte boundaries.
    buf.resize(buf.len().next_multiple_of(4), 0);
}

/// An NLMSG_NOOP asking for an acknowledgement: answered once every message sent before
/// it in the same send has been processed.
fn append_noop(buf: &mut Vec<u8>, seq: u32) {
    buf.extend((NLMSG_HDRLEN as u32).to_ne_bytes());
    buf.extend(NLMSG_NOOP.to_ne_bytes());
    buf.extend((NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
    buf.extend(seq.to_ne_bytes());
    buf.extend(0u32.to_ne_bytes());
}

/// SO_RCVBUFFORCE (root may exceed net.core.rmem_max), else SO_RCVBUF.
fn force_receive_buffer(socket: &Socket, bytes: usize) -> io::Result<()> {
    let value = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    for option in [libc::SO_RCVBUFFORCE, libc::SO_RCVBUF] {
        // SAFETY: setsockopt reads `size_of::<c_int>()` bytes from a live c_int.
        let rc = unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::SOL_SOCKET,
                option,
                (&value as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc == 0 {
            return Ok(());
        }
    }
    Err(io::Error::last_os_error())
}

/// One received netlink message, seen in place.
struct RawMessage<'a> {
    kind: u16,
    flags: u16,
    seq: u32,
    bytes: &'a [u8],
}

impl RawMessage<'_> {
    fn body(&self) -> &[u8] {
        &self.bytes[NLMSG_HDRLEN..]
    }

    /// For NLMSG_ERROR / NLMSG_DONE: `None` for success, else the errno and the kernel's
    /// extended-ack message, if any.
    fn error(&self) -> Option<(i32, Option<String>)> {
        let body = self.body();
        let code = i32::from_ne_bytes(body.get(..4)?.try_into().ok()?);
        if code == 0 {
            return None;
        }
        let mut ext = None;
        if self.flags & NLM_F_ACK_TLVS != 0 {
            // After the code comes the echoed request: its header only when capped.
            let echoed = if self.flags & NLM_F_CAPPED != 0 {
                NLMSG_HDRLEN
            } else {
                body.get(4..8)
                    .map_or(NLMSG_HDRLEN, |l| u32::from_ne_bytes(l.try_into().unwrap_or([0; 4])) as usize)
            };
            let mut tlvs = body.get(4 + echoed..).unwrap_or(&[]);
            while tlvs.len() >= 4 {
                let len = usize::from(u16::from_ne_bytes([tlvs[0], tlvs[1]]));
                let kind = u16::from_ne_bytes([tlvs[2], tlvs[3]]);
                if len < 4 || len > tlvs.len() {
                    break;
                }
                if kind == NLMSGERR_ATTR_MSG {
                    let text = &tlvs[4..len];
                    let text = text.split(|&b| b == 0).next().unwrap_or(text);
                    ext = Some(String::from_utf8_lossy(text).into_owned());
                }
                tlvs = &tlvs[len.next_multiple_of(4).min(tlvs.len())..];
            }
        }
        Some((-code, ext))
    }
}

struct Messages<'a> {
    buf: &'a [u8],
}

impl<'a> Messages<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }
}

impl<'a> Iterator for Messages<'a> {
    type Item = RawMessage<'a>;

    fn next(&mut self) -> Option<RawMessage<'a>> {
        let b = self.buf;
        if b.len() < NLMSG_HDRLEN {
            return None;
        }
        let len = u32::from_ne_bytes(b[0..4].try_into().ok()?) as usize;
        if len < NLMSG_HDRLEN || len > b.len() {
            self.buf = &[];
            return None;
        }
        let msg = RawMessage {
            kind: u16::from_ne_bytes([b[4], b[5]]),
            flags: u16::from_ne_bytes([b[6], b[7]]),
            seq: u32::from_ne_bytes(b[8..12].try_into().ok()?),
            bytes: &b[..len],
        };
        self.buf = &b[len.next_multiple_of(4).min(b.len())..];
        Some(msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_message(seq: u32, code: i32, flags: u16, ext: Option<&str>) -> Vec<u8> {
        let mut tlvs = Vec::new();
        if let Some(text) = ext {
            let len = 4 + text.len() + 1;
            tlvs.extend((len as u16).to_ne_bytes());
            tlvs.extend(NLMSGERR_ATTR_MSG.to_ne_bytes());
            tlvs.extend(text.as_bytes());
            tlvs.push(0);
            tlvs.resize(tlvs.len().next_multiple_of(4), 0);
        }
        let len = NLMSG_HDRLEN + 4 + NLMSG_HDRLEN + tlvs.len();
        let mut m = Vec::new();
        m.extend((len as u32).to_ne_bytes());
        m.extend(NLMSG_ERROR.to_ne_bytes());
        m.extend(flags.to_ne_bytes());
        m.extend(seq.to_ne_bytes());
        m.extend(0u32.to_ne_bytes());
        m.extend(code.to_ne_bytes());
        m.extend([0u8; NLMSG_HDRLEN]);
        m.extend(tlvs);
        m
    }

    #[test]
    fn acks_errors_and_extended_messages_are_read() {
        let mut buf = error_message(7, 0, NLM_F_CAPPED, None);
        buf.extend(error_message(
            8,
            -17,
            NLM_F_CAPPED | NLM_F_ACK_TLVS,
            Some("Exclusivity flag on, cannot modify"),
        ));
        let msgs: Vec<_> = Messages::new(&buf).collect();
        assert_eq!(msgs.len(), 2);
        assert_eq!((msgs[0].seq, msgs[0].error()), (7, None));
        assert_eq!(msgs[1].seq, 8);
        assert_eq!(msgs[1].error(), Some((17, Some("Exclusivity flag on, cannot modify".into()))));
    }

    #[test]
    fn a_truncated_buffer_ends_the_messages() {
        let buf = error_message(1, 0, 0, None);
        assert_eq!(Messages::new(&buf[..10]).count(), 0);
        let mut bad = buf.clone();
        bad[0] = 200;
        assert_eq!(Messages::new(&bad).count(), 0);
    }

    #[test]
    fn kernel_errors_name_the_request_the_namespace_and_the_errno() {
        let e = NlError::Kernel {
            what: "netem on isl3".into(),
            netns: "orbitnet-tiny-2".into(),
            errno: 17,
            ext: Some("qdisc exists".into()),
        };
        assert_eq!(
            e.to_string(),
            "netem on isl3 in orbitnet-tiny-2: File exists (os error 17): qdisc exists"
        );
        assert_eq!(e.errno(), Some(17));
    }
}
