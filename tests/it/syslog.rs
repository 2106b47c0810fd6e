//! The syslog receiver against the real `logger` (bsdutils) over UDP and TCP, RFC 3164 and 5424,
//! and against hostile TCP senders that must not disturb well-behaved ones.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use socwatch::decode::{DecodeContext, Decoder, prepare_line};
use socwatch::model::Format;
use socwatch::sources::syslog::{Limits, SyslogMessage, SyslogStats, run_tcp, run_udp};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc, watch};

const WAIT: Duration = Duration::from_secs(10);

/// A receiver running on 127.0.0.1 port 0, with its channel and counters.
struct Receiver {
    addr: std::net::SocketAddr,
    rx: mpsc::Receiver<SyslogMessage>,
    stats: Arc<SyslogStats>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    async fn udp(queue: usize) -> Receiver {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        let (tx, rx) = mpsc::channel(queue);
        let (stop, shutdown) = watch::channel(false);
        let stats = Arc::new(SyslogStats::default());
        let task = tokio::spawn(run_udp(
            socket,
            0,
            tx,
            stats.clone(),
            Limits::default(),
            shutdown,
        ));
        Receiver {
            addr,
            rx,
            stats,
            stop,
            task,
        }
    }

    async fn tcp(queue: usize, limits: Limits) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = mpsc::channel(queue);
        let (stop, shutdown) = watch::channel(false);
        let stats = Arc::new(SyslogStats::default());
        let task = tokio::spawn(run_tcp(listener, 0, tx, stats.clone(), limits, shutdown));
        Receiver {
            addr,
            rx,
            stats,
            stop,
            task,
        }
    }

    fn count(&self, counter: impl Fn(&SyslogStats) -> &std::sync::atomic::AtomicU64) -> u64 {
        counter(&self.stats).load(Ordering::Relaxed)
    }

    /// Stops the receiver and waits for it; what it delivered stays readable in `rx`.
    async fn shut(&mut self) {
        self.stop.send(true).unwrap();
        (&mut self.task).await.unwrap();
    }
}

/// Runs the real `logger`; awaited, so the runtime's threads stay free to serve the receiver.
async fn logger(args: &[&str], port: u16) {
    let status = tokio::process::Command::new("logger")
        .args(["--server", "127.0.0.1", "--port", &port.to_string()])
        .args(args)
        .status()
        .await
        .expect("logger (bsdutils) is installed");
    assert!(status.success(), "logger {args:?}");
}

async fn next(rx: &mut mpsc::Receiver<SyslogMessage>) -> SyslogMessage {
    tokio::time::timeout(WAIT, rx.recv())
        .await
        .expect("a message within 10 s")
        .expect("channel open")
}

fn decode(message: &SyslogMessage) -> (String, String, Option<String>) {
    let line = prepare_line(&message.bytes, 65536);
    let ctx = DecodeContext::new(jiff::tz::TimeZone::UTC, jiff::Timestamp::now());
    let event = Decoder::new(Format::Syslog, ctx).decode(&line.text);
    assert!(!event.parse_error, "not syslog: {}", line.text);
    (
        event.get("program").unwrap_or_default().to_string(),
        event.message().to_string(),
        event.get("sd.origin@32473.role").map(str::to_string),
    )
}

/// Waits until a counter reaches a value; the receiver updates counters from its own task.
async fn until(what: &str, check: impl Fn() -> bool) {
    tokio::time::timeout(WAIT, async {
        while !check() {
            tokio::task::yield_now().await;
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out waiting for {what}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_rfc3164_and_rfc5424_from_logger() {
    let mut r = Receiver::udp(64).await;
    let port = r.addr.port();

    logger(
        &[
            "--udp",
            "--rfc3164",
            "-t",
            "sshd",
            "Failed password for root from 203.0.113.7 port 22 ssh2",
        ],
        port,
    )
    .await;
    let got = next(&mut r.rx).await;
    assert_eq!(got.peer.ip().to_string(), "127.0.0.1");
    let (program, message, _) = decode(&got);
    assert_eq!(program, "sshd");
    assert_eq!(
        message,
        "Failed password for root from 203.0.113.7 port 22 ssh2"
    );

    logger(
        &[
            "--udp",
            "--rfc5424",
            "-t",
            "portal",
            "--sd-id",
            "origin@32473",
            "--sd-param",
            "role=\"web\"",
            "nổ hũ tài xỉu",
        ],
        port,
    )
    .await;
    let (program, message, role) = decode(&next(&mut r.rx).await);
    assert_eq!(
        (program.as_str(), message.as_str(), role.as_deref()),
        ("portal", "nổ hũ tài xỉu", Some("web"))
    );

    r.shut().await;
    assert_eq!(r.count(|s| &s.received), 2);
    assert_eq!(r.count(|s| &s.dropped), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_octet_counting_and_newline_framing_from_logger() {
    let mut r = Receiver::tcp(64, Limits::default()).await;
    let port = r.addr.port();

    logger(
        &[
            "--tcp",
            "--octet-count",
            "--rfc5424",
            "-t",
            "sshd",
            "Invalid user oracle from 198.51.100.23 port 33110",
        ],
        port,
    )
    .await;
    let (program, message, _) = decode(&next(&mut r.rx).await);
    assert_eq!(
        (program.as_str(), message.as_str()),
        ("sshd", "Invalid user oracle from 198.51.100.23 port 33110")
    );

    logger(
        &[
            "--tcp",
            "--rfc3164",
            "-t",
            "sudo",
            "deploy : 3 incorrect password attempts",
        ],
        port,
    )
    .await;
    let (program, message, _) = decode(&next(&mut r.rx).await);
    assert_eq!(
        (program.as_str(), message.as_str()),
        ("sudo", "deploy : 3 incorrect password attempts")
    );

    r.shut().await;
    assert_eq!(r.count(|s| &s.framing_errors), 0);
}

/// One port, one connection, both framings: each frame is told apart on its own (a digit run then a
/// space is an octet count), so a relay that switches framing mid-stream loses nothing, and a
/// newline-framed message that starts with digits is not taken for a count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_auto_detects_the_framing_of_every_frame_on_one_connection() {
    let mut r = Receiver::tcp(64, Limits::default()).await;
    let messages = [
        "<38>Nov 22 10:00:01 h sshd[1]: first, octet counted",
        "<38>Nov 22 10:00:02 h sshd[1]: second, newline framed",
        "<38>Nov 22 10:00:03 h sshd[1]: third, octet counted\nwith a newline inside",
        "<38>Nov 22 10:00:04 h sshd[1]: fourth, newline framed",
    ];
    let mut stream = TcpStream::connect(r.addr).await.unwrap();
    let mut bytes = Vec::new();
    for (i, message) in messages.iter().enumerate() {
        if i % 2 == 0 {
            bytes.extend(format!("{} {message}", message.len()).into_bytes());
        } else {
            bytes.extend(format!("{message}\n").into_bytes());
        }
    }
    // A newline-framed message that starts with digits and a space is no octet count (no `<` after).
    bytes.extend(b"2026 is not a length\n");
    stream.write_all(&bytes).await.unwrap();
    stream.shutdown().await.unwrap();
    for message in messages {
        assert_eq!(next(&mut r.rx).await.bytes, message.as_bytes());
    }
    assert_eq!(next(&mut r.rx).await.bytes, b"2026 is not a length");
    r.shut().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_tcp_senders_disturb_no_one_else() {
    let limits = Limits {
        max_message_bytes: 64 * 1024,
        // Long enough that a loaded machine writing 1 MB never looks idle.
        idle_timeout: Duration::from_secs(2),
        max_connections: 64,
    };
    let mut r = Receiver::tcp(1024, limits).await;
    let addr = r.addr;

    // An idle connection, one sending garbage, one a 1 MB octet-counted frame, one closing mid-frame.
    let idle = TcpStream::connect(addr).await.unwrap();
    let mut garbage = TcpStream::connect(addr).await.unwrap();
    garbage
        .write_all(b"\x00\xff\xfe binary\x01\x02 noise\n\n\n")
        .await
        .unwrap();
    let mut huge = TcpStream::connect(addr).await.unwrap();
    let header = b"<13>1 2026-11-22T10:00:00Z h app - - - ";
    huge.write_all(b"1048576 ").await.unwrap();
    huge.write_all(header).await.unwrap();
    huge.write_all(&vec![b'A'; 1048576 - header.len()])
        .await
        .unwrap();
    let mut half = TcpStream::connect(addr).await.unwrap();
    half.write_all(b"500 <13>Nov 22 10:00:00 h app: only part of it")
        .await
        .unwrap();
    drop(half);

    // Meanwhile a well-behaved sender delivers every message.
    for n in 0..20 {
        logger(
            &[
                "--tcp",
                "--octet-count",
                "-t",
                "sshd",
                &format!("Failed password for root from 203.0.113.{n} port 22 ssh2"),
            ],
            addr.port(),
        )
        .await;
    }
    let mut seen = 0;
    let mut huge_seen = false;
    let mut half_seen = false;
    while seen < 20 || !huge_seen || !half_seen {
        let message = next(&mut r.rx).await;
        let text = String::from_utf8_lossy(&message.bytes).into_owned();
        if text.contains("Failed password for root from 203.0.113.") {
            seen += 1;
        } else if message.original_len == 1048576 {
            assert_eq!(message.bytes.len(), 64 * 1024, "cut to the cap");
            huge_seen = true;
        } else if text.ends_with("only part of it") {
            half_seen = true;
        }
    }
    until("the idle connection to be closed", || {
        r.count(|s| &s.idle_closed) >= 1
    })
    .await;
    assert!(r.count(|s| &s.oversized) >= 1);
    assert!(
        r.count(|s| &s.framing_errors) >= 1,
        "the half frame is counted"
    );
    drop((idle, garbage, huge));
    r.shut().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_overload_drops_are_counted_not_silent() {
    // A pipeline that is not reading: the channel holds 4.
    let mut r = Receiver::udp(4).await;
    let addr = r.addr;
    let sender = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for n in 0..50 {
        sender
            .send_to(
                format!("<13>Nov 22 10:00:00 h app: datagram {n}").as_bytes(),
                addr,
            )
            .await
            .unwrap();
    }
    until("the datagrams to be received", || {
        r.count(|s| &s.received) >= 20
    })
    .await;
    r.shut().await;
    let mut delivered = 0;
    while r.rx.try_recv().is_ok() {
        delivered += 1;
    }
    let (received, dropped) = (r.count(|s| &s.received), r.count(|s| &s.dropped));
    assert_eq!(delivered, 4);
    assert_eq!(
        received,
        delivered + dropped,
        "every datagram is delivered or counted as dropped"
    );
    assert!(dropped > 0);
}
