//! The syslog receiver: UDP datagrams, TCP streams (RFC 6587 octet counting and newline framing,
//! told apart per frame, so one port serves both) and TLS (RFC 5425: octet counting over TLS, newline
//! framing accepted too; optional client certificates).
//! Only framing happens here; messages go to the pipeline as bytes with their sender, and the
//! decoders (RFC 3164 / 5424) run there like for files.
//!
//! UDP never waits: when the pipeline's channel is full a datagram is dropped and counted, because
//! the kernel would drop the next ones anyway and the socket must keep draining. TCP waits (the
//! sender is back-pressured). A sender of garbage, half frames, huge frames or idle connections only
//! ever affects its own connection.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
pub use tokio_rustls::TlsAcceptor;

/// One syslog message as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyslogMessage {
    /// Which `[[source.syslog]]` it came in on.
    pub source: usize,
    pub peer: SocketAddr,
    /// The message, without framing and without a trailing newline; at most the size cap.
    pub bytes: Vec<u8>,
    /// Its length before it was cut to the cap.
    pub original_len: usize,
}

/// Counters for `/metrics` and the logs; shared between the receiver tasks.
#[derive(Debug, Default)]
pub struct SyslogStats {
    pub received: AtomicU64,
    /// UDP datagrams dropped because the pipeline was full.
    pub dropped: AtomicU64,
    /// Messages cut to the size cap.
    pub oversized: AtomicU64,
    /// Frames that broke the framing rules (bad length, connection closed mid-frame); what arrived is still delivered.
    pub framing_errors: AtomicU64,
    pub tcp_connections: AtomicU64,
    /// TCP connections closed for staying silent longer than the idle timeout.
    pub idle_closed: AtomicU64,
    /// TLS connections that failed their handshake (no or an untrusted client certificate, not TLS,
    /// too slow); nothing of theirs is read.
    pub tls_refused: AtomicU64,
}

impl SyslogStats {
    /// Counts one message in, and whether it was longer than the cap.
    fn note_received(&self, original_len: usize, limits: &Limits) {
        self.received.fetch_add(1, Ordering::Relaxed);
        if original_len > limits.max_message_bytes {
            self.oversized.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_message_bytes: usize,
    pub idle_timeout: Duration,
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_bytes: 64 * 1024,
            idle_timeout: Duration::from_secs(300),
            max_connections: 1024,
        }
    }
}

/// The receive buffer a UDP listener asks for. The kernel gives at most `net.core.rmem_max` (doubled,
/// for its own bookkeeping): on a stock Debian that is 416 KiB, twice the default of every other
/// socket; raising the sysctl lets a listener ride out longer stalls of the pipeline.
pub const UDP_RECEIVE_BUFFER: usize = 8 << 20;

/// Asks for `UDP_RECEIVE_BUFFER` on `socket` and returns what the kernel gave. Datagrams beyond the
/// buffer are lost in the kernel before any receiver sees them (on a busy machine, a few
/// milliseconds without the CPU at 100,000 messages/s); the default buffer holds about 2 ms.
pub fn widen_receive_buffer(socket: &UdpSocket) -> std::io::Result<usize> {
    let socket = socket2::SockRef::from(socket);
    socket.set_recv_buffer_size(UDP_RECEIVE_BUFFER)?;
    socket.recv_buffer_size()
}

/// Receives datagrams until `shutdown` turns true.
pub async fn run_udp(
    socket: UdpSocket,
    source: usize,
    tx: mpsc::Sender<SyslogMessage>,
    stats: Arc<SyslogStats>,
    limits: Limits,
    mut shutdown: watch::Receiver<bool>,
) {
    // One byte more than the cap tells a datagram that was cut by the buffer.
    let mut buf = vec![0u8; limits.max_message_bytes.max(1) + 1];
    loop {
        let (len, peer) = tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => return,
            received = socket.recv_from(&mut buf) => match received {
                Ok(got) => got,
                Err(err) => {
                    tracing::warn!(error = %err, "syslog udp receive failed");
                    continue;
                }
            },
        };
        stats.note_received(len, &limits);
        let kept = len.min(limits.max_message_bytes);
        let message = SyslogMessage {
            source,
            peer,
            bytes: trim_line_end(&buf[..kept]).to_vec(),
            original_len: len,
        };
        if tx.try_send(message).is_err() {
            stats.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Accepts connections until `shutdown` turns true, then waits for the open ones to finish their frames.
pub async fn run_tcp(
    listener: TcpListener,
    source: usize,
    tx: mpsc::Sender<SyslogMessage>,
    stats: Arc<SyslogStats>,
    limits: Limits,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut connections = JoinSet::new();
    let connection_shutdown = shutdown.clone();
    loop {
        tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    if connections.len() >= limits.max_connections {
                        tracing::warn!(%peer, "syslog tcp connection refused: too many connections");
                        continue;
                    }
                    stats.tcp_connections.fetch_add(1, Ordering::Relaxed);
                    let (tx, stats, shutdown) = (tx.clone(), stats.clone(), connection_shutdown.clone());
                    connections.spawn(serve_connection(stream, peer, source, tx, stats, limits, shutdown));
                }
                Err(err) => tracing::warn!(error = %err, "syslog tcp accept failed"),
            },
        }
    }
    while connections.join_next().await.is_some() {}
}

/// How long a TLS client may take to finish its handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The TLS side of a `protocol = "tls"` listener from PEM: the server's certificate chain and key,
/// and, when given, the CA whose client certificates are required (mutual TLS); without it any
/// client may connect, as with TCP. Errors name what is wrong, for the start-up message.
pub fn tls_acceptor(
    cert_pem: &[u8],
    key_pem: &[u8],
    client_ca_pem: Option<&[u8]>,
) -> Result<TlsAcceptor, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|err| format!("cert_file: {err}"))?;
    if certs.is_empty() {
        return Err("cert_file holds no PEM certificate".into());
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|err| format!("key_file: {err}"))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|err| err.to_string())?;
    let builder = match client_ca_pem {
        Some(pem) => {
            let mut roots = rustls::RootCertStore::empty();
            for ca in CertificateDer::pem_slice_iter(pem) {
                let ca = ca.map_err(|err| format!("client_ca_file: {err}"))?;
                roots
                    .add(ca)
                    .map_err(|err| format!("client_ca_file: {err}"))?;
            }
            if roots.is_empty() {
                return Err("client_ca_file holds no PEM certificate".into());
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .map_err(|err| format!("client_ca_file: {err}"))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let config = builder
        .with_single_cert(certs, key)
        .map_err(|err| format!("cert_file and key_file: {err}"))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Accepts TLS connections until `shutdown` turns true. Each connection is framed like TCP (RFC 5425
/// prescribes octet counting; newline framing is accepted too) once its handshake is done; a failed
/// handshake is counted and logged, and costs no one else anything.
pub async fn run_tls(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    source: usize,
    tx: mpsc::Sender<SyslogMessage>,
    stats: Arc<SyslogStats>,
    limits: Limits,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut connections = JoinSet::new();
    let connection_shutdown = shutdown.clone();
    loop {
        tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    if connections.len() >= limits.max_connections {
                        tracing::warn!(%peer, "syslog tls connection refused: too many connections");
                        continue;
                    }
                    let (tx, stats, shutdown) = (tx.clone(), stats.clone(), connection_shutdown.clone());
                    let acceptor = acceptor.clone();
                    connections.spawn(async move {
                        let handshake = tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await;
                        match handshake {
                            Ok(Ok(stream)) => {
                                stats.tcp_connections.fetch_add(1, Ordering::Relaxed);
                                serve_connection(stream, peer, source, tx, stats, limits, shutdown).await;
                            }
                            Ok(Err(err)) => {
                                stats.tls_refused.fetch_add(1, Ordering::Relaxed);
                                tracing::warn!(%peer, error = %err, "syslog tls handshake failed");
                            }
                            Err(_) => {
                                stats.tls_refused.fetch_add(1, Ordering::Relaxed);
                                tracing::warn!(%peer, "syslog tls handshake timed out");
                            }
                        }
                    });
                }
                Err(err) => tracing::warn!(error = %err, "syslog tls accept failed"),
            },
        }
    }
    while connections.join_next().await.is_some() {}
}

/// Reads frames from one connection until it closes, idles out, or shutdown.
async fn serve_connection<S: AsyncRead + Unpin>(
    stream: S,
    peer: SocketAddr,
    source: usize,
    tx: mpsc::Sender<SyslogMessage>,
    stats: Arc<SyslogStats>,
    limits: Limits,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut reader = BufReader::with_capacity(64 * 1024, stream);
    loop {
        let frame = tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => return,
            frame = read_frame(&mut reader, limits.max_message_bytes, limits.idle_timeout) => frame,
        };
        let frame = match frame {
            Err(err) if err.kind() == std::io::ErrorKind::TimedOut => {
                stats.idle_closed.fetch_add(1, Ordering::Relaxed);
                return;
            }
            Err(err) => {
                tracing::debug!(%peer, error = %err, "syslog tcp connection ended");
                return;
            }
            Ok(None) => return,
            Ok(Some(frame)) => frame,
        };
        if frame.broken {
            stats.framing_errors.fetch_add(1, Ordering::Relaxed);
        }
        if frame.timed_out {
            stats.idle_closed.fetch_add(1, Ordering::Relaxed);
        }
        if frame.bytes.is_empty() && frame.original_len == 0 {
            if frame.last {
                return;
            }
            continue;
        }
        stats.note_received(frame.original_len, &limits);
        let message = SyslogMessage {
            source,
            peer,
            bytes: frame.bytes,
            original_len: frame.original_len,
        };
        if tx.send(message).await.is_err() {
            return;
        }
        if frame.last {
            return;
        }
    }
}

#[derive(Debug, Default)]
struct Frame {
    bytes: Vec<u8>,
    original_len: usize,
    /// The frame broke the rules (a length that is not a number, the stream ended inside it).
    broken: bool,
    /// The stream ended with this frame.
    last: bool,
    /// The sender went silent in the middle of this frame; the connection is closed after it.
    timed_out: bool,
}

/// What to do when reading a frame fails: a silent sender in the middle of a frame still gets
/// what it sent delivered (counted as broken), anything else ends the connection.
fn partial_on_timeout(
    err: std::io::Error,
    bytes: &[u8],
    original_len: usize,
) -> std::io::Result<Frame> {
    if err.kind() == std::io::ErrorKind::TimedOut && original_len > 0 {
        Ok(Frame {
            bytes: trim_line_end(bytes).to_vec(),
            original_len,
            broken: true,
            last: true,
            timed_out: true,
        })
    } else {
        Err(err)
    }
}

/// Reads one frame. Octet counting (`LEN SP MSG`) when the frame starts with a digit, else up to the
/// next newline (RFC 6587 3.4.2; what `logger --tcp` and rsyslog send by default).
async fn read_frame<R: tokio::io::AsyncBufRead + Unpin>(
    reader: &mut R,
    max: usize,
    idle: Duration,
) -> std::io::Result<Option<Frame>> {
    // Some senders put a newline after octet-counted frames; blank separators are no messages.
    let first = loop {
        match fill(reader, idle).await? {
            [] => return Ok(None),
            [b'\n' | b'\r' | 0, ..] => reader.consume(1),
            bytes => break bytes[0],
        }
    };
    if first.is_ascii_digit() {
        let mut digits = Vec::new();
        loop {
            let available = fill(reader, idle).await?;
            let Some(&byte) = available.first() else {
                return Ok(Some(Frame {
                    bytes: digits,
                    broken: true,
                    last: true,
                    ..Frame::default()
                }));
            };
            reader.consume(1);
            match byte {
                b'0'..=b'9' if digits.len() < 10 => digits.push(byte),
                b' ' => {
                    // Every syslog message starts with `<PRI>`; anything else after a number is a
                    // newline-framed message that happens to start with digits.
                    let next = fill(reader, idle).await?;
                    if next.first().is_some_and(|&b| b != b'<') {
                        digits.push(b' ');
                        let mut frame = read_line_frame(reader, max, idle, digits).await?;
                        frame.broken = true;
                        return Ok(Some(frame));
                    }
                    break;
                }
                _ => {
                    // Not octet counting after all (e.g. a message starting with a digit): the
                    // rest of the line is the message.
                    digits.push(byte);
                    let mut frame = read_line_frame(reader, max, idle, digits).await?;
                    frame.broken = true;
                    return Ok(Some(frame));
                }
            }
        }
        let len: usize = std::str::from_utf8(&digits)
            .ok()
            .and_then(|d| d.parse().ok())
            .unwrap_or(0);
        let mut bytes = Vec::with_capacity(len.min(max));
        let mut remaining = len;
        let mut broken = false;
        while remaining > 0 {
            let available = match fill(reader, idle).await {
                Ok(available) => available,
                Err(err) => return partial_on_timeout(err, &bytes, len - remaining).map(Some),
            };
            if available.is_empty() {
                broken = true;
                break;
            }
            let take = available.len().min(remaining);
            let room = max.saturating_sub(bytes.len());
            bytes.extend_from_slice(&available[..take.min(room)]);
            reader.consume(take);
            remaining -= take;
        }
        let original_len = len - remaining;
        Ok(Some(Frame {
            bytes: trim_line_end(&bytes).to_vec(),
            original_len,
            broken,
            last: broken,
            timed_out: false,
        }))
    } else {
        read_line_frame(reader, max, idle, Vec::new())
            .await
            .map(Some)
    }
}

/// The rest of a newline-framed message, keeping at most `max` bytes of it.
async fn read_line_frame<R: tokio::io::AsyncBufRead + Unpin>(
    reader: &mut R,
    max: usize,
    idle: Duration,
    mut bytes: Vec<u8>,
) -> std::io::Result<Frame> {
    let mut total = bytes.len();
    loop {
        let available = match fill(reader, idle).await {
            Ok(available) => available,
            Err(err) => return partial_on_timeout(err, &bytes, total),
        };
        if available.is_empty() {
            // Closed mid-line: what arrived is still a message.
            return Ok(Frame {
                bytes: trim_line_end(&bytes).to_vec(),
                original_len: total,
                broken: total > 0,
                last: true,
                timed_out: false,
            });
        }
        let (part, done) = match memchr::memchr(b'\n', available) {
            Some(end) => (&available[..end], Some(end + 1)),
            None => (available, None),
        };
        let room = max.saturating_sub(bytes.len());
        bytes.extend_from_slice(&part[..part.len().min(room)]);
        total += part.len();
        let used = done.unwrap_or(available.len());
        reader.consume(used);
        if done.is_some() {
            return Ok(Frame {
                bytes: trim_line_end(&bytes).to_vec(),
                original_len: total,
                broken: false,
                last: false,
                timed_out: false,
            });
        }
    }
}

/// The next buffered bytes, or `TimedOut` when the sender stays silent for `idle`: a connection is
/// idle when no byte arrives, however long its current frame takes.
async fn fill<R: tokio::io::AsyncBufRead + Unpin>(
    reader: &mut R,
    idle: Duration,
) -> std::io::Result<&[u8]> {
    match tokio::time::timeout(idle, reader.fill_buf()).await {
        Ok(result) => result,
        Err(_) => Err(std::io::ErrorKind::TimedOut.into()),
    }
}

fn trim_line_end(bytes: &[u8]) -> &[u8] {
    let mut end = bytes.len();
    while end > 0 && matches!(bytes[end - 1], b'\n' | b'\r' | 0) {
        end -= 1;
    }
    &bytes[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn frames(input: &[u8], max: usize) -> Vec<Frame> {
        let mut reader = BufReader::with_capacity(1024, input);
        let mut out = Vec::new();
        while let Some(frame) = read_frame(&mut reader, max, Duration::from_secs(5))
            .await
            .unwrap()
        {
            let last = frame.last;
            out.push(frame);
            if last {
                break;
            }
        }
        out
    }

    #[tokio::test]
    async fn frames_by_octet_count_and_by_newline() {
        let got = frames(b"11 <13>h a: hi5 <13>x\nplain line\r\n12 not a count\n", 64).await;
        let texts: Vec<&[u8]> = got.iter().map(|f| f.bytes.as_slice()).collect();
        assert_eq!(
            texts,
            vec![
                &b"<13>h a: hi"[..],
                b"<13>x",
                b"plain line",
                b"12 not a count"
            ]
        );
        assert!(
            got[3].broken,
            "a digit-led line that is not a count is delivered but counted"
        );
    }

    #[tokio::test]
    async fn a_udp_listener_gets_a_larger_receive_buffer_than_a_default_socket() {
        let plain = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let default = socket2::SockRef::from(&plain).recv_buffer_size().unwrap();
        let listener = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let got = widen_receive_buffer(&listener).unwrap();
        // Capped by net.core.rmem_max, which is at least the default, and doubled by the kernel.
        assert!(
            got > default,
            "receive buffer {got} bytes, a default socket has {default}"
        );
    }

    #[tokio::test]
    async fn huge_frames_are_cut_to_the_cap_and_the_stream_goes_on() {
        let mut input = b"100000 <13>".to_vec();
        input.extend(std::iter::repeat_n(b'A', 100_000 - 4));
        input.extend(b"9 <13>after");
        let got = frames(&input, 1000).await;
        assert_eq!(got.len(), 2);
        assert_eq!((got[0].bytes.len(), got[0].original_len), (1000, 100_000));
        assert_eq!(got[1].bytes, b"<13>after");
    }

    #[tokio::test]
    async fn frames_arriving_in_small_pieces_lose_nothing() {
        let (mut writer, reader) = tokio::io::duplex(1000);
        let sender = tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            let header = b"<13>1 2026-11-22T10:00:00Z h app - - - ";
            writer.write_all(b"300000 ").await.unwrap();
            writer.write_all(header).await.unwrap();
            writer
                .write_all(&vec![b'A'; 300_000 - header.len()])
                .await
                .unwrap();
            writer.write_all(b"9 <13>after").await.unwrap();
        });
        let mut reader = BufReader::with_capacity(64 * 1024, reader);
        let first = read_frame(&mut reader, 1000, Duration::from_secs(5))
            .await
            .unwrap()
            .unwrap();
        assert_eq!((first.original_len, first.broken), (300_000, false));
        let second = read_frame(&mut reader, 1000, Duration::from_secs(5))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(second.bytes, b"<13>after");
        sender.await.unwrap();
    }

    #[tokio::test]
    async fn a_stream_ending_mid_frame_delivers_what_arrived() {
        let got = frames(b"50 <13>h a: cut", 64).await;
        assert_eq!(got.len(), 1);
        assert!(got[0].broken && got[0].last);
        assert_eq!(got[0].bytes, b"<13>h a: cut");
    }
}
