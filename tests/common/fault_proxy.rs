//! A TCP fault proxy on 127.0.0.1 between gust and a real server, for the network
//! fault tests (tests/faults_network.rs).
//!
//! The test points a hook at [`FaultProxy::port`] instead of the server's port and
//! changes the fault while the hook runs: pass-through, a reset (RST) after some
//! bytes in one direction, a stall, added latency, refused connections, or — for
//! HTTP (S3) — a `503 SlowDown` answer to chosen requests. The proxy counts
//! connections and bytes, so a test can check that a fault really hit mid-stream.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Which way bytes flow through the proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    /// Client → server (e.g. `COPY FROM STDIN` data, an upload).
    Up,
    /// Server → client (e.g. `COPY TO STDOUT` data, a download).
    Down,
}

/// Which connections a fault hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    /// Every connection, for as long as the fault is set: a permanent fault.
    All,
    /// The `k`-th connection accepted (from 1) only.
    Nth(usize),
    /// The first connection that meets the fault's condition; then the fault is
    /// cleared: a transient fault, whichever pooled connection carries the bulk
    /// data.
    Once,
}

/// What the proxy does to the bytes it forwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Forward everything.
    Pass,
    /// Forward `after` bytes in direction `dir`, then reset both sides (RST,
    /// not FIN: the peers see "connection reset", as when a middlebox or a
    /// crashed host drops the connection).
    Reset { dir: Dir, after: u64, which: Which },
    /// Forward `after` bytes in direction `dir`, then forward nothing more in
    /// either direction, without closing: a hung peer or a black-holed route.
    Stall { dir: Dir, after: u64, which: Which },
    /// Delay every chunk by this long, in both directions.
    Latency(Duration),
}

/// For HTTP: answer matching requests with `503 SlowDown` instead of
/// forwarding them.
#[derive(Debug, Clone)]
pub struct HttpFault {
    /// The request method, e.g. `PUT`.
    pub method: &'static str,
    /// Substrings the request target must all contain, e.g. `["partNumber=",
    /// "uploadId="]` for S3's UploadPart.
    pub target_contains: Vec<&'static str>,
    /// Which matching request (from 1) is answered 503; `None` answers every one.
    pub nth: Option<usize>,
}

/// When `set_http_reset` resets a matching request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetWhen {
    /// Before forwarding it: the server never sees it.
    BeforeServer,
    /// After the server's first bytes of answer: the server acted on it.
    AfterServerAnswers,
}

/// Counters and controls shared by the accept loop and every connection.
struct State {
    upstream: SocketAddr,
    fault: Mutex<Fault>,
    http: Mutex<Option<HttpFault>>,
    /// HTTP requests to reset rather than answer, and when (see `set_http_reset`).
    http_reset: Mutex<Option<(HttpFault, ResetWhen)>>,
    http_reset_matched: AtomicUsize,
    http_resets: AtomicUsize,
    refuse: watch::Sender<bool>,
    connections: AtomicUsize,
    bytes_up: AtomicU64,
    bytes_down: AtomicU64,
    resets: AtomicUsize,
    stalls: AtomicUsize,
    /// Requests that matched the HTTP fault, and the 503s sent.
    http_matched: AtomicUsize,
    http_injected: AtomicUsize,
    /// Set by `kill_all` and on drop: every connection resets.
    kill: watch::Sender<u64>,
    /// Set by `reset_stalled`: the stalled connections reset.
    unstall: watch::Sender<u64>,
}

/// A running proxy; dropping it resets every connection through it.
pub struct FaultProxy {
    port: u16,
    state: Arc<State>,
    accept: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    /// Starts a pass-through proxy to `host:port`.
    pub async fn start(host: &str, port: u16) -> FaultProxy {
        let upstream = tokio::net::lookup_host((host, port))
            .await
            .unwrap()
            .next()
            .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let state = Arc::new(State {
            upstream,
            fault: Mutex::new(Fault::Pass),
            http: Mutex::new(None),
            http_reset: Mutex::new(None),
            http_reset_matched: AtomicUsize::new(0),
            http_resets: AtomicUsize::new(0),
            refuse: watch::channel(false).0,
            connections: AtomicUsize::new(0),
            bytes_up: AtomicU64::new(0),
            bytes_down: AtomicU64::new(0),
            resets: AtomicUsize::new(0),
            stalls: AtomicUsize::new(0),
            http_matched: AtomicUsize::new(0),
            http_injected: AtomicUsize::new(0),
            kill: watch::channel(0).0,
            unstall: watch::channel(0).0,
        });
        let port = listener.local_addr().unwrap().port();
        let accept = tokio::spawn(accept_loop(listener, state.clone()));
        FaultProxy {
            port,
            state,
            accept,
        }
    }

    /// The proxy's port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Sets the fault for the bytes forwarded from now on (connections already
    /// open included).
    pub fn set(&self, fault: Fault) {
        *self.state.fault.lock().unwrap() = fault;
    }

    /// The fault now set (`Pass` once a `Which::Once` fault has fired).
    pub fn fault(&self) -> Fault {
        *self.state.fault.lock().unwrap()
    }

    /// Answers matching HTTP requests with 503 (`None`: forward every request).
    /// Each connection then carries one request (see `http_connection`).
    pub fn set_http(&self, fault: Option<HttpFault>) {
        *self.state.http.lock().unwrap() = fault;
    }

    /// Resets matching HTTP requests (`None`: forward every request): before
    /// the server sees them, or once the server has answered — so it acted on
    /// the request, but the client never gets the answer, as when a middlebox
    /// drops the connection on the way back. Like `set_http`, each connection
    /// accepted from now on carries one request; set it before the client
    /// opens the connections the fault should see.
    pub fn set_http_reset(&self, fault: Option<(HttpFault, ResetWhen)>) {
        *self.state.http_reset.lock().unwrap() = fault;
    }

    /// HTTP requests reset by `set_http_reset`.
    pub fn http_resets(&self) -> usize {
        self.state.http_resets.load(Ordering::SeqCst)
    }

    /// Refuses new connections (the listening socket is closed: a connect gets
    /// ECONNREFUSED), or accepts them again on the same port. Open connections
    /// stay; `kill_all` resets them.
    pub fn refuse(&self, on: bool) {
        self.state.refuse.send_replace(on);
    }

    /// Resets every open connection (pooled ones included).
    pub fn kill_all(&self) {
        self.state.kill.send_modify(|n| *n += 1);
    }

    /// Resets the connections a stall holds (only those: the others go on).
    pub fn reset_stalled(&self) {
        self.state.unstall.send_modify(|n| *n += 1);
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.state.connections.load(Ordering::SeqCst)
    }

    /// Bytes forwarded so far in `dir`.
    pub fn bytes(&self, dir: Dir) -> u64 {
        match dir {
            Dir::Up => self.state.bytes_up.load(Ordering::SeqCst),
            Dir::Down => self.state.bytes_down.load(Ordering::SeqCst),
        }
    }

    /// Connections reset by a `Fault::Reset`.
    pub fn resets(&self) -> usize {
        self.state.resets.load(Ordering::SeqCst)
    }

    /// Connections stalled by a `Fault::Stall`.
    pub fn stalls(&self) -> usize {
        self.state.stalls.load(Ordering::SeqCst)
    }

    /// HTTP requests that matched the HTTP fault, and the 503s sent for them.
    pub fn http_counts(&self) -> (usize, usize) {
        (
            self.state.http_matched.load(Ordering::SeqCst),
            self.state.http_injected.load(Ordering::SeqCst),
        )
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.kill_all();
    }
}

async fn accept_loop(listener: TcpListener, state: Arc<State>) {
    let addr = listener.local_addr().unwrap();
    let mut listener = Some(listener);
    let mut refuse = state.refuse.subscribe();
    loop {
        // Refusing closes the listening socket, so that a connect gets
        // ECONNREFUSED (as from a server that is down), not an accept and a
        // reset; accepting again binds the same port anew.
        let refusing = *refuse.borrow_and_update();
        match (refusing, listener.is_some()) {
            (true, true) => listener = None,
            (false, false) => listener = Some(TcpListener::bind(addr).await.unwrap()),
            _ => {}
        }
        let Some(l) = &listener else {
            if refuse.changed().await.is_err() {
                return;
            }
            continue;
        };
        let client = tokio::select! {
            r = l.accept() => match r {
                Ok((c, _)) => c,
                Err(_) => return,
            },
            _ = refuse.changed() => continue,
        };
        let id = state.connections.fetch_add(1, Ordering::SeqCst) + 1;
        let state = state.clone();
        tokio::spawn(async move {
            let Ok(upstream) = TcpStream::connect(state.upstream).await else {
                reset(&client);
                return;
            };
            let _ = client.set_nodelay(true);
            let _ = upstream.set_nodelay(true);
            let http = state.http.lock().unwrap().clone();
            let http_reset = state.http_reset.lock().unwrap().clone();
            if http.is_some() || http_reset.is_some() {
                http_connection(id, client, upstream, state, http, http_reset).await
            } else {
                connection(id, client, upstream, state).await
            }
        });
    }
}

/// Sets SO_LINGER to 0 so that closing the socket sends RST instead of FIN.
fn reset(s: &TcpStream) {
    let _ = s.set_zero_linger();
}

/// What the two pumps of one connection share.
#[derive(Default)]
struct Link {
    /// Wakes the other pump when one resets the connection.
    done: tokio::sync::Notify,
    /// Set when a stall fault hits: neither pump forwards any more.
    stalled: AtomicBool,
}

/// One proxied connection: a pump per direction; when either decides to reset
/// (or the test kills all), both sockets are closed with RST.
async fn connection(id: usize, client: TcpStream, upstream: TcpStream, state: Arc<State>) {
    let (c_read, c_write) = client.into_split();
    let (u_read, u_write) = upstream.into_split();
    let link = Arc::new(Link::default());
    tokio::join!(
        pump(id, Dir::Up, c_read, u_write, state.clone(), link.clone()),
        pump(id, Dir::Down, u_read, c_write, state, link),
    );
}

/// Forwards `from` → `to` under the current fault, until `from` ends, a write
/// fails, a fault resets the connection (then the other pump is woken and
/// resets too) or the test kills every connection.
async fn pump(
    id: usize,
    dir: Dir,
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    state: Arc<State>,
    link: Arc<Link>,
) {
    let mut kill = state.kill.subscribe();
    let mut unstall = state.unstall.subscribe();
    let mut buf = vec![0u8; 64 * 1024];
    let mut sent = 0u64;
    loop {
        let n = tokio::select! {
            r = from.read(&mut buf) => match r {
                Ok(0) | Err(_) => {
                    // A clean end passes on as a clean end (FIN), so that a
                    // pass-through proxy changes nothing.
                    let _ = to.shutdown().await;
                    return;
                }
                Ok(n) => n,
            },
            _ = link.done.notified() => return rst_and_close(from, to),
            _ = kill.changed() => return rst_and_close(from, to),
        };
        let fault = *state.fault.lock().unwrap();
        let mut chunk = &buf[..n];
        let mut hit = None;
        match fault {
            Fault::Pass => {}
            Fault::Latency(d) => tokio::time::sleep(d).await,
            Fault::Reset {
                dir: d,
                after,
                which,
            }
            | Fault::Stall {
                dir: d,
                after,
                which,
            } if d == dir && sent + n as u64 > after && claims(&state, id, which) => {
                // Up to the limit, then the fault.
                chunk = &chunk[..after.saturating_sub(sent) as usize];
                hit = Some(fault);
            }
            _ => {}
        }
        if link.stalled.load(Ordering::SeqCst) {
            chunk = &[];
            hit = Some(Fault::Stall {
                dir,
                after: 0,
                which: Which::All,
            });
        }
        if to.write_all(chunk).await.is_err() {
            return rst_and_close(from, to);
        }
        sent += chunk.len() as u64;
        count(&state, dir, chunk.len());
        match hit {
            Some(Fault::Reset { .. }) => {
                state.resets.fetch_add(1, Ordering::SeqCst);
                // A permit is stored if the other pump is not waiting now.
                link.done.notify_one();
                return rst_and_close(from, to);
            }
            Some(_) => {
                if !link.stalled.swap(true, Ordering::SeqCst) {
                    state.stalls.fetch_add(1, Ordering::SeqCst);
                }
                // Hold both sockets open, forwarding nothing, until killed.
                tokio::select! {
                    _ = kill.changed() => {}
                    _ = unstall.changed() => {}
                }
                // The other pump holds the sockets' other halves: wake it, so
                // that both close and the RST goes out.
                link.done.notify_one();
                return rst_and_close(from, to);
            }
            None => {}
        }
    }
}

/// Whether connection `id` is hit by a fault for `which`; a `Once` fault is
/// cleared by the connection that claims it, so no other one sees it.
fn claims(state: &State, id: usize, which: Which) -> bool {
    match which {
        Which::All => true,
        Which::Nth(k) => k == id,
        Which::Once => {
            let mut f = state.fault.lock().unwrap();
            // Another pump may have claimed it since this one read the fault.
            if matches!(
                *f,
                Fault::Reset {
                    which: Which::Once,
                    ..
                } | Fault::Stall {
                    which: Which::Once,
                    ..
                }
            ) {
                *f = Fault::Pass;
                true
            } else {
                false
            }
        }
    }
}

fn count(state: &State, dir: Dir, n: usize) {
    let c = match dir {
        Dir::Up => &state.bytes_up,
        Dir::Down => &state.bytes_down,
    };
    c.fetch_add(n as u64, Ordering::SeqCst);
}

/// Closes both halves of a socket pair's side with RST: linger 0 on the socket,
/// and the write half forgotten so that its drop sends no FIN first.
fn rst_and_close(from: OwnedReadHalf, to: OwnedWriteHalf) {
    reset(from.as_ref());
    reset(to.as_ref());
    to.forget();
    drop(from);
}

/// An HTTP/1.1 connection in the HTTP fault mode. To keep request framing out
/// of the proxy, each connection carries one request: the proxy adds
/// `Connection: close` to the request, so the server closes after its answer
/// and the client opens a new connection for the next request. A matching
/// request gets a `503 SlowDown` S3 error (its body read and dropped first, so
/// the client is not reset while still sending) and the connection is closed.
async fn http_connection(
    id: usize,
    client: TcpStream,
    upstream: TcpStream,
    state: Arc<State>,
    fault: Option<HttpFault>,
    reset_fault: Option<(HttpFault, ResetWhen)>,
) {
    let (mut c_read, mut c_write) = client.into_split();
    let mut head = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let end = loop {
        if let Some(i) = find(&head, b"\r\n\r\n") {
            break i + 4;
        }
        match c_read.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    };
    let rest = head.split_off(end);
    let text = String::from_utf8_lossy(&head).to_string();
    let mut words = text.split_whitespace();
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let is =
        |f: &HttpFault| f.method == method && f.target_contains.iter().all(|s| target.contains(s));
    let inject = fault.as_ref().is_some_and(|fault| {
        is(fault) && {
            let n = state.http_matched.fetch_add(1, Ordering::SeqCst) + 1;
            fault.nth.is_none_or(|k| k == n)
        }
    });
    let reset_when = reset_fault.as_ref().and_then(|(fault, when)| {
        (is(fault) && {
            let n = state.http_reset_matched.fetch_add(1, Ordering::SeqCst) + 1;
            fault.nth.is_none_or(|k| k == n)
        })
        .then_some(*when)
    });
    if inject {
        let expects_continue = header(&text, "expect").is_some_and(|v| v.contains("100"));
        if !expects_continue {
            // Read the body away: closing a socket with unread bytes sends RST,
            // which the client could see before our answer.
            let len: u64 = header(&text, "content-length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            let mut left = len.saturating_sub(rest.len() as u64);
            while left > 0 {
                match c_read.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => left = left.saturating_sub(n as u64),
                }
            }
        }
        let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>SlowDown</Code>\
                    <Message>Please reduce your request rate.</Message></Error>";
        let answer = format!(
            "HTTP/1.1 503 Slow Down\r\ncontent-type: application/xml\r\ncontent-length: {}\r\n\
             connection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = c_write.write_all(answer.as_bytes()).await;
        let _ = c_write.shutdown().await;
        state.http_injected.fetch_add(1, Ordering::SeqCst);
        // Let the client read the answer and close first.
        let _ = tokio::time::timeout(Duration::from_secs(5), c_read.read(&mut buf)).await;
        return;
    }
    // Forward with `Connection: close` added (an existing Connection header is
    // dropped), then the rest of the stream as it comes.
    let mut out = Vec::with_capacity(head.len() + 32);
    for line in text.trim_end_matches("\r\n").split("\r\n") {
        if !line.to_ascii_lowercase().starts_with("connection:") {
            out.extend_from_slice(line.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
    }
    out.extend_from_slice(b"connection: close\r\n\r\n");
    out.extend_from_slice(&rest);
    if reset_when == Some(ResetWhen::BeforeServer) {
        state.http_resets.fetch_add(1, Ordering::SeqCst);
        let client = c_read.reunite(c_write).unwrap();
        reset(&client);
        reset(&upstream);
        return;
    }
    let (mut u_read, mut u_write) = upstream.into_split();
    if u_write.write_all(&out).await.is_err() {
        return;
    }
    count(&state, Dir::Up, out.len());
    if reset_when == Some(ResetWhen::AfterServerAnswers) {
        // The rest of the body, then the server's first bytes of answer:
        // it has acted on the request. Then RST both ways, answer dropped.
        let len: u64 = header(&text, "content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut left = len.saturating_sub(rest.len() as u64);
        while left > 0 {
            match c_read.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if u_write.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                    left = left.saturating_sub(n as u64);
                }
            }
        }
        let _ = u_read.read(&mut buf).await;
        state.http_resets.fetch_add(1, Ordering::SeqCst);
        rst_and_close(c_read, c_write);
        rst_and_close(u_read, u_write);
        return;
    }
    let client = c_read.reunite(c_write).unwrap();
    let upstream = u_read.reunite(u_write).unwrap();
    connection(id, client, upstream, state).await;
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The value of header `name` (lower case) in a request head.
fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.split("\r\n").skip(1).find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}
