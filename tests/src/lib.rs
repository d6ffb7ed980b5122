//! Test harness: runs the sample guests through the wsbox host against real
//! peers on 127.0.0.1 (port 0): the Python `websockets` library
//! (`tests/peers/peer.py`) and in-test tokio-tungstenite servers.

use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use wasmtime::component::Component;
use wsbox::{Config, Exit, InstanceLimits, Output, Policy, RunOutput, Runner};

pub use wsbox_testbed::{guest, nats, polyglot_guest, python, repo};

pub mod browser;
pub mod chat;
pub mod node;
pub mod oracle;
pub mod pki;
pub mod raw;

/// One JSON-like record of 64 bytes. The text pattern repeats it, here, in
/// `tests/peers/peer.py` and in the `close-probe` guest
/// (`send-text-pattern:N`).
pub const TEXT_RECORD: &str =
    "{\"id\":12345,\"user\":\"wsbox\",\"tags\":[\"a\",\"b\"],\"ok\":true,\"n\":0.25}\n";

/// The text pattern of `len` bytes: [`TEXT_RECORD`] repeated and cut.
pub fn text_pattern(len: usize) -> String {
    TEXT_RECORD.repeat(len / TEXT_RECORD.len() + 1)[..len].to_string()
}

pub use wsbox_testbed::wait::{within, WAIT};

/// Sends `message` on a tokio-tungstenite stream, within [`WAIT`].
pub async fn send<S>(ws: &mut tokio_tungstenite::WebSocketStream<S>, message: tungstenite::Message)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use futures_util::SinkExt;
    within("a send to the websocket peer", ws.send(message))
        .await
        .unwrap_or_else(|e| panic!("send failed: {e}"));
}

/// The next message (data or control) from a tokio-tungstenite stream,
/// within [`WAIT`]; the test fails if the stream ends or fails instead.
pub async fn next_message<S>(ws: &mut tokio_tungstenite::WebSocketStream<S>) -> tungstenite::Message
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use futures_util::StreamExt;
    match within("a message from the websocket peer", ws.next()).await {
        Some(Ok(message)) => message,
        Some(Err(e)) => panic!("the websocket failed instead of giving a message: {e}"),
        None => panic!("the websocket ended instead of giving a message"),
    }
}

/// Reads a tokio-tungstenite stream until it ends or fails (after a close
/// handshake, until the other side ends TCP), within [`WAIT`].
pub async fn drain<S>(ws: &mut tokio_tungstenite::WebSocketStream<S>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use futures_util::StreamExt;
    within("the end of the websocket stream", async {
        while let Some(Ok(_)) = ws.next().await {}
    })
    .await;
}

/// One runner per test binary, and each component compiled once.
fn runner() -> &'static Runner {
    static RUNNER: OnceLock<Runner> = OnceLock::new();
    RUNNER.get_or_init(|| Runner::new().expect("engine"))
}

/// The compiled sample guest `name` (e.g. `close-probe`).
pub fn component(name: &str) -> Component {
    component_at(&guest(name))
}

/// The compiled client component at `path` (any language), compiled once
/// per test binary; the time it took is printed on stderr. Components are
/// compiled side by side: only the callers that want the same one wait for
/// each other.
pub fn component_at(path: &Path) -> Component {
    static CACHE: PathCache<Component> = OnceLock::new();
    once_per_path(&CACHE, path, "", || {
        runner()
            .load(path)
            .unwrap_or_else(|e| panic!("{} loads: {e}", path.display()))
    })
}

/// Values built once per path and test binary.
type PathCache<T> = OnceLock<Mutex<HashMap<PathBuf, Arc<OnceLock<T>>>>>;

/// The value `make` builds for `path`, built once per test binary and
/// cache; callers for other paths do not wait. The time it took is printed
/// on stderr, with `what` after the path.
fn once_per_path<T: Clone>(
    cache: &'static PathCache<T>,
    path: &Path,
    what: &str,
    make: impl FnOnce() -> T,
) -> T {
    let slot = cache
        .get_or_init(Default::default)
        .lock()
        .unwrap()
        .entry(path.to_path_buf())
        .or_default()
        .clone();
    slot.get_or_init(|| {
        let start = std::time::Instant::now();
        let value = make();
        eprintln!(
            "compiled {} ({} bytes){what} in {:.1?}",
            path.display(),
            std::fs::metadata(path).map(|m| m.len()).unwrap_or(0),
            start.elapsed()
        );
        value
    })
    .clone()
}

/// Runs the client component at `path` (any language) with `args`, as
/// program `name`, capturing its output.
pub async fn run_component(
    path: &Path,
    name: &str,
    setup: impl Into<Setup>,
    args: &[&str],
) -> RunOutput {
    let Setup { config, instance } = setup.into();
    let component = component_at(path);
    let args: Vec<String> = std::iter::once(name)
        .chain(args.iter().copied())
        .map(String::from)
        .collect();
    let out = tokio::time::timeout(
        Duration::from_secs(120),
        runner().run_limited(
            &component,
            Arc::new(config),
            &instance,
            &args,
            Output::Capture,
        ),
    )
    .await
    .expect("guest run finished in time")
    .expect("guest ran");
    eprintln!(
        "--- {} stdout:\n{}--- stderr:\n{}---",
        path.display(),
        out.stdout,
        out.stderr
    );
    out
}

/// The component written in `tests/wat/NAME.wat`, turned into a binary
/// under `target/tmp/wat` (which [`Runner::load`] insists on) for
/// [`run_component`] and [`component_at`].
pub fn wat_component(name: &str) -> PathBuf {
    let source = repo().join("tests/wat").join(format!("{name}.wat"));
    let binary =
        wat::parse_file(&source).unwrap_or_else(|e| panic!("{} parses: {e}", source.display()));
    let dir = repo().join("target/tmp/wat");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.wasm"));
    // Written aside and renamed, as tests and test binaries may run side
    // by side.
    static WRITES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let write = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let partial = dir.join(format!("{name}.{}.{write}.partial", std::process::id()));
    std::fs::write(&partial, binary).unwrap();
    std::fs::rename(&partial, &path).unwrap();
    path
}

/// Like [`probe_with`], for the `close-probe` component at `path` (the Rust,
/// Python or JavaScript one: they take the same arguments and print the same
/// lines).
pub async fn probe_component(
    path: &Path,
    config: impl Into<Setup>,
    url: &str,
    steps: &[&str],
) -> Probe {
    let args: Vec<&str> = std::iter::once(url).chain(steps.iter().copied()).collect();
    let out = run_component(path, "close-probe", config, &args).await;
    assert_eq!(
        out.exit,
        Exit::Code(0),
        "{} failed: {}",
        path.display(),
        out.stderr
    );
    Probe {
        lines: out.stdout.lines().map(String::from).collect(),
    }
}

/// A configuration that allows `ws://127.0.0.1:PORT`.
pub fn allow(port: u16) -> Config {
    Config {
        policy: Policy::from_patterns(&[format!("ws://127.0.0.1:{port}")]).unwrap(),
        ..Config::default()
    }
}

/// Runs sample guest `name` with `args`, capturing its output.
pub async fn run_guest(name: &str, config: impl Into<Setup>, args: &[&str]) -> RunOutput {
    run_component(&guest(name), name, config, args).await
}

/// How a client guest runs: its websockets' configuration and its
/// sandbox's limits. A bare [`Config`] runs with the default
/// [`InstanceLimits`].
pub struct Setup {
    /// The websockets' configuration.
    pub config: Config,
    /// The sandbox's limits.
    pub instance: InstanceLimits,
}

impl From<Config> for Setup {
    fn from(config: Config) -> Self {
        Setup {
            config,
            instance: InstanceLimits::default(),
        }
    }
}

impl From<(Config, InstanceLimits)> for Setup {
    fn from((config, instance): (Config, InstanceLimits)) -> Self {
        Setup { config, instance }
    }
}

/// Runs `close-probe URL STEPS...` against a peer on `port` and returns its
/// output, checking that it exited 0.
pub async fn probe(port: u16, url: &str, steps: &[&str]) -> Probe {
    probe_with(allow(port), url, steps).await
}

/// Like [`probe`], with a configuration of the test's own.
pub async fn probe_with(config: impl Into<Setup>, url: &str, steps: &[&str]) -> Probe {
    probe_component(&guest("close-probe"), config, url, steps).await
}

/// The output of `close-probe`: one `STEP -> RESULT` line per step.
#[derive(Debug)]
pub struct Probe {
    /// Every line it printed.
    pub lines: Vec<String>,
}

impl Probe {
    /// The results printed for `step`, in order.
    pub fn results(&self, step: &str) -> Vec<&str> {
        let prefix = format!("{step} -> ");
        self.lines
            .iter()
            .filter_map(|l| l.strip_prefix(&prefix))
            .collect()
    }

    /// The only (or first) result printed for `step`.
    pub fn result(&self, step: &str) -> &str {
        self.results(step)
            .first()
            .copied()
            .unwrap_or_else(|| panic!("no line for step {step:?} in {:#?}", self.lines))
    }

    /// The results of every step, in order, as `(step, result)`.
    pub fn steps(&self) -> Vec<(&str, &str)> {
        self.lines
            .iter()
            .filter_map(|l| l.split_once(" -> "))
            .collect()
    }
}

/// A Python `websockets` peer running `tests/peers/peer.py server ARGS...`.
pub struct PyPeer {
    child: Child,
    /// The port it listens on.
    pub port: u16,
    events: mpsc::UnboundedReceiver<Value>,
}

impl PyPeer {
    /// Starts the peer and waits until it listens.
    pub async fn start(args: &[&str]) -> PyPeer {
        PyPeer::start_with_env(args, &[]).await
    }

    /// Like [`PyPeer::start`], with environment variables for the peer,
    /// e.g. `PEER_DEFLATE` (see `tests/peers/peer.py`).
    pub async fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> PyPeer {
        let script = repo().join("tests/peers/peer.py");
        let mut child = Command::new(python())
            .arg(script)
            .arg("server")
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("python peer starts");
        let stdout = child.stdout.take().unwrap();
        let (tx, mut events) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                eprintln!("peer: {line}");
                match serde_json::from_str::<Value>(&line) {
                    Ok(v) => {
                        let _ = tx.send(v);
                    }
                    Err(e) => eprintln!("peer printed a line that is not JSON ({e}): {line}"),
                }
            }
        });
        let first = tokio::time::timeout(WAIT, events.recv())
            .await
            .expect("peer listens in time")
            .expect("peer printed its port");
        assert_eq!(first["event"], "listening", "{first}");
        let port = first["port"].as_u64().unwrap() as u16;
        PyPeer {
            child,
            port,
            events,
        }
    }

    /// `ws://127.0.0.1:PORT/path`.
    pub fn url(&self, path: &str) -> String {
        format!("ws://127.0.0.1:{}{path}", self.port)
    }

    /// The next event whose `event` field is `kind`, skipping others.
    pub async fn next(&mut self, kind: &str) -> Value {
        loop {
            let event = tokio::time::timeout(WAIT, self.events.recv())
                .await
                .unwrap_or_else(|_| panic!("peer reported no {kind:?} event in time"))
                .expect("peer is running");
            if event["event"] == kind {
                return event;
            }
        }
    }

    /// Every event up to and including the next one whose `event` field is
    /// `kind`.
    pub async fn until(&mut self, kind: &str) -> Vec<Value> {
        let mut events = Vec::new();
        loop {
            let event = tokio::time::timeout(WAIT, self.events.recv())
                .await
                .unwrap_or_else(|_| panic!("peer reported no {kind:?} event in time: {events:#?}"))
                .expect("peer is running");
            let found = event["event"] == kind;
            events.push(event);
            if found {
                return events;
            }
        }
    }

    /// Every event reported so far, without waiting.
    pub fn drain(&mut self) -> Vec<Value> {
        let mut out = Vec::new();
        while let Ok(v) = self.events.try_recv() {
            out.push(v);
        }
        out
    }
}

impl Drop for PyPeer {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// The `(code, reason)` of a close frame the peer reported, or `None`.
pub fn close_of(frame: &Value) -> Option<(u16, String)> {
    if frame.is_null() {
        return None;
    }
    Some((
        frame["code"].as_u64()? as u16,
        frame["reason"].as_str()?.to_string(),
    ))
}

/// A TCP listener on 127.0.0.1:0 that counts accepted connections.
pub struct CountingListener {
    /// Its port.
    pub port: u16,
    accepted: Arc<std::sync::atomic::AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl CountingListener {
    /// Starts listening.
    pub async fn start() -> CountingListener {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = accepted.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                drop(stream);
            }
        });
        CountingListener {
            port,
            accepted,
            task,
        }
    }

    /// How many connections were accepted.
    pub fn accepted(&self) -> usize {
        self.accepted.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Drop for CountingListener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Sets up logging for a test binary once (`RUST_LOG` controls it).
pub fn init_logging() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    });
}

/// What an in-test tokio-tungstenite peer saw.
#[derive(Debug, Clone, PartialEq)]
pub enum Seen {
    /// A data message.
    Message(tungstenite::Message),
    /// The client's close frame (`None`: it had no payload).
    Close(Option<(u16, String)>),
    /// The stream ended or failed without a close frame.
    End(String),
}

/// An in-test tokio-tungstenite server on 127.0.0.1:0. Each connection runs
/// `handler`, which reports what it saw.
pub struct RustPeer {
    /// Its port.
    pub port: u16,
    seen: mpsc::UnboundedReceiver<Seen>,
    task: tokio::task::JoinHandle<()>,
}

/// The server-side stream a [`RustPeer`] handler gets.
pub type ServerStream = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

impl RustPeer {
    /// Starts a server whose connections run `handler`.
    pub async fn start<F, Fut>(handler: F) -> RustPeer
    where
        F: Fn(ServerStream, mpsc::UnboundedSender<Seen>) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, seen) = mpsc::unbounded_channel();
        let handler = Arc::new(handler);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (handler, tx) = (handler.clone(), tx.clone());
                tokio::spawn(async move {
                    match tokio_tungstenite::accept_async(stream).await {
                        Ok(ws) => handler(ws, tx).await,
                        Err(e) => {
                            let _ = tx.send(Seen::End(format!("handshake: {e}")));
                        }
                    }
                });
            }
        });
        RustPeer { port, seen, task }
    }

    /// An echo server that reports every message and the close frame.
    pub async fn echo() -> RustPeer {
        RustPeer::start(echo_until_close).await
    }

    /// `ws://127.0.0.1:PORT/`.
    pub fn url(&self) -> String {
        format!("ws://127.0.0.1:{}/", self.port)
    }

    /// The next thing the peer saw.
    pub async fn next(&mut self) -> Seen {
        tokio::time::timeout(WAIT, self.seen.recv())
            .await
            .expect("the peer saw something in time")
            .expect("the peer is running")
    }

    /// The next close frame or end, skipping messages.
    pub async fn next_close(&mut self) -> Seen {
        loop {
            match self.next().await {
                Seen::Message(_) => continue,
                other => return other,
            }
        }
    }
}

impl Drop for RustPeer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Echoes data messages and reports them, until the client closes (its
/// close frame is echoed by tungstenite) or the stream ends.
pub async fn echo_until_close(mut ws: ServerStream, tx: mpsc::UnboundedSender<Seen>) {
    use futures_util::{SinkExt, StreamExt};
    while let Some(msg) = ws.next().await {
        match msg {
            Ok(tungstenite::Message::Close(frame)) => {
                let _ = tx.send(Seen::Close(
                    frame.map(|f| (f.code.into(), f.reason.to_string())),
                ));
                // tungstenite writes its answer while the stream is polled,
                // and ends the stream when the handshake is done.
                while ws.next().await.is_some() {}
                return;
            }
            Ok(m) if m.is_text() || m.is_binary() => {
                // An owned copy: tungstenite's payload is a view into its
                // 128 KiB read buffer, which a kept message would pin.
                let copy = match &m {
                    tungstenite::Message::Text(text) => {
                        tungstenite::Message::text(text.as_str().to_owned())
                    }
                    other => tungstenite::Message::binary(other.clone().into_data().to_vec()),
                };
                let _ = tx.send(Seen::Message(copy));
                if ws.send(m).await.is_err() {
                    break;
                }
            }
            Ok(_) => {}
            Err(e) => {
                let _ = tx.send(Seen::End(e.to_string()));
                return;
            }
        }
    }
    let _ = tx.send(Seen::End("stream ended".into()));
}

/// A `wsbox::Server` running a sample handler on 127.0.0.1:0, in this
/// process. Guest output lines are collected for the test to read.
pub struct Served {
    /// Its port.
    pub port: u16,
    logs: mpsc::UnboundedReceiver<String>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<wsbox::Result<()>>,
}

/// Serves sample handler `name` (e.g. `echo`) with `config` (its
/// `guest_output` is replaced to collect the lines).
pub async fn serve(name: &str, config: wsbox::ServeConfig) -> Served {
    serve_component(&guest(name), config).await
}

/// Like [`serve`], for the handler component at `path` (any language).
pub async fn serve_component(path: &Path, mut config: wsbox::ServeConfig) -> Served {
    let logs = collect_output(&mut config);
    let server = wsbox::Server::new(path, config)
        .unwrap_or_else(|e| panic!("{} loads: {e}", path.display()));
    serve_server(server, logs).await
}

/// Serves `routes` with `config` (its `guest_output` is replaced to collect
/// the lines), and gives the server too, for its metrics and reloads.
pub async fn serve_routes(
    routes: Vec<wsbox::Route>,
    mut config: wsbox::ServeConfig,
) -> (Served, wsbox::Server) {
    let logs = collect_output(&mut config);
    let server = wsbox::Server::with_routes(routes, config)
        .unwrap_or_else(|e| panic!("the routes load: {e}"));
    (serve_server(server.clone(), logs).await, server)
}

/// Sets `config.guest_output` to print each line on stderr and hand it to
/// the receiver.
fn collect_output(config: &mut wsbox::ServeConfig) -> mpsc::UnboundedReceiver<String> {
    let (tx, logs) = mpsc::unbounded_channel();
    config.guest_output = Arc::new(move |line: &wsbox::GuestLine<'_>| {
        eprintln!("[{} {}] {}", line.client, line.route, line.text);
        let _ = tx.send(line.text.to_string());
    });
    logs
}

/// Serves the handler component at `path` (any language) with the default
/// configuration, from one [`wsbox::Server`] per path and test binary, so
/// that a large component is compiled once (the time it took is printed on
/// stderr). Its guest output goes to stderr only: [`Served::log_line`]
/// finds nothing.
pub async fn serve_shared(path: &Path) -> Served {
    static SERVERS: PathCache<wsbox::Server> = OnceLock::new();
    let server = once_per_path(&SERVERS, path, " for serving", || {
        let config = wsbox::ServeConfig {
            guest_output: Arc::new(|line: &wsbox::GuestLine<'_>| {
                eprintln!("[{}] {}", line.client, line.text)
            }),
            ..wsbox::ServeConfig::default()
        };
        wsbox::Server::new(path, config).unwrap_or_else(|e| panic!("{} loads: {e}", path.display()))
    });
    let (_, logs) = mpsc::unbounded_channel();
    serve_server(server, logs).await
}

/// Serves `server` on 127.0.0.1:0 until [`Served::shutdown`] or drop.
async fn serve_server(server: wsbox::Server, logs: mpsc::UnboundedReceiver<String>) -> Served {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        server
            .serve(listener, async {
                let _ = stopped.await;
            })
            .await
    });
    Served {
        port,
        logs,
        stop: Some(stop),
        task,
    }
}

impl Served {
    /// `ws://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("ws://127.0.0.1:{}{path}", self.port)
    }

    /// `wss://localhost:PORT{path}`, for a server with TLS.
    pub fn wss_url(&self, path: &str) -> String {
        format!("wss://localhost:{}{path}", self.port)
    }

    /// The next guest output line that contains `needle`.
    pub async fn log_line(&mut self, needle: &str) -> String {
        loop {
            let line = tokio::time::timeout(WAIT, self.logs.recv())
                .await
                .unwrap_or_else(|_| panic!("no guest output containing {needle:?} in time"))
                .expect("server running");
            if line.contains(needle) {
                return line;
            }
        }
    }

    /// Every guest output line up to and including the next one that
    /// contains `needle`.
    pub async fn log_lines_until(&mut self, needle: &str) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            let line = tokio::time::timeout(WAIT, self.logs.recv())
                .await
                .unwrap_or_else(|_| panic!("no guest output containing {needle:?} in time"))
                .expect("server running");
            let found = line.contains(needle);
            lines.push(line);
            if found {
                return lines;
            }
        }
    }

    /// The guest output lines that arrived and were not read yet, without
    /// waiting. Guest output is written and flushed (WASI's
    /// `blocking-write-and-flush`) before the guest's next call, so after
    /// a reply from the guest, every line it printed before is here.
    pub fn logged(&mut self) -> Vec<String> {
        std::iter::from_fn(|| self.logs.try_recv().ok()).collect()
    }

    /// Triggers graceful shutdown and waits for `serve` to return.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(WAIT, &mut self.task)
            .await
            .expect("serve returned in time")
            .expect("serve task")
            .expect("serve ended cleanly");
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A tokio-tungstenite client stream.
pub type ClientStream =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Connects a tokio-tungstenite client.
pub async fn connect(url: &str) -> ClientStream {
    let (ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url))
        .await
        .expect("connected in time")
        .expect("connected");
    ws
}

/// Reads until the server's close frame and returns its (code, reason);
/// `None` if the stream ended without one. Data messages are returned too.
pub async fn read_until_close(
    ws: &mut ClientStream,
) -> (Vec<tungstenite::Message>, Option<(u16, String)>) {
    use futures_util::StreamExt;
    let mut messages = Vec::new();
    loop {
        match tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("server answered in time")
        {
            Some(Ok(tungstenite::Message::Close(frame))) => {
                let close = frame
                    .map(|f| (u16::from(f.code), f.reason.to_string()))
                    .or(Some((1005, String::new())));
                drain(ws).await;
                return (messages, close);
            }
            Some(Ok(m)) if m.is_text() || m.is_binary() => messages.push(m),
            Some(Ok(_)) => {}
            Some(Err(_)) | None => return (messages, None),
        }
    }
}

/// Sends a raw HTTP request and returns the status line's code and the
/// whole answer.
pub async fn http_get(port: u16, head: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = within(
        "an HTTP connection",
        tokio::net::TcpStream::connect(("127.0.0.1", port)),
    )
    .await
    .unwrap();
    within("sending an HTTP request", tcp.write_all(head.as_bytes()))
        .await
        .unwrap();
    // Until the server ends the connection; a reset after the answer
    // keeps what arrived.
    let mut answer = Vec::new();
    let _ = within(
        "the server to answer and end the HTTP connection",
        tcp.read_to_end(&mut answer),
    )
    .await;
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, answer)
}

/// Runs `tests/peers/peer.py client ARGS...` (Python `websockets` as the
/// client) to the end and returns the events it reported.
pub async fn py_client(args: &[&str]) -> Vec<Value> {
    py_client_with_env(args, &[]).await
}

/// Like [`py_client`], with environment variables for the peer, e.g.
/// `PEER_DEFLATE` (see `tests/peers/peer.py`).
pub async fn py_client_with_env(args: &[&str], env: &[(&str, &str)]) -> Vec<Value> {
    let out = tokio::time::timeout(
        Duration::from_secs(120),
        Command::new(python())
            .arg(repo().join("tests/peers/peer.py"))
            .arg("client")
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("python client finished in time")
    .expect("python client ran");
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("python client:\n{stdout}");
    assert_eq!(out.status.code(), Some(0), "python client failed");
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

/// The first event of `kind` in `events`.
pub fn event<'a>(events: &'a [Value], kind: &str) -> &'a Value {
    events
        .iter()
        .find(|e| e["event"] == kind)
        .unwrap_or_else(|| panic!("no {kind:?} event in {events:#?}"))
}

/// Runs `f` and returns its output with what was logged meanwhile (every
/// `tracing` event at INFO or above, as plain text). It captures the test's
/// own thread, which under `#[tokio::test]` (a current-thread runtime) is
/// where the host runs guests and serves connections.
pub async fn with_logs<F: std::future::Future>(f: F) -> (F::Output, String) {
    use tracing_subscriber::util::SubscriberInitExt;
    struct Sink(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Sink {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let text = Arc::new(Mutex::new(Vec::new()));
    let sink = text.clone();
    let output = {
        let _guard = tracing_subscriber::fmt()
            .with_max_level(tracing_subscriber::filter::LevelFilter::INFO)
            .with_ansi(false)
            .with_writer(move || Sink(sink.clone()))
            .finish()
            .set_default();
        f.await
    };
    let text = String::from_utf8_lossy(&text.lock().unwrap()).into_owned();
    eprintln!("--- logged:\n{text}---");
    (output, text)
}
