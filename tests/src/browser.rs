//! Browser harness: a real browser (headless Chromium) as the WebSocket peer.
//!
//! [`run_browser`] serves `tests/browser/page.html` (embedded) from a tiny
//! HTTP server on 127.0.0.1 (port 0), starts headless Chromium on it with a
//! fresh temporary profile, and waits for the JSON report the page POSTs back
//! to `/report` on the same server (same origin, so no CORS). The page opens
//! `new WebSocket(ws_url, protocols)`, runs a scenario and records what the
//! browser saw; the file's header comment documents the scenarios and the
//! report's fields. `ws_url` may be `wss://`: Chromium runs with
//! `--ignore-certificate-errors`, so self-signed certificates do; or, with
//! [`run_browser_with`] and [`Launch::trusted_spki`], it trusts only the
//! test's CA. [`Launch::page`] serves the page from a listener the test
//! bound, so that the test knows the page's origin beforehand.
//!
//! [`run_pages`] does the same for the chat page, `tests/browser/chat.html`
//! (the `chat` sample's page), in several browsers at once: headless
//! Chromium opens one page per process.
//!
//! Chromium is Debian's `chromium` package (see [`chromium`]); `.ci/run`
//! installs it. Browser runs are serialized within a test binary (one Chromium
//! at a time: each one is several processes and a few hundred MB), and every
//! run is bounded by [`BROWSER_WAIT`] once it has started.

use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Mutex};
use tokio::task::{JoinHandle, JoinSet};

/// The test page (its header comment documents scenarios and report).
const PAGE: &str = include_str!("../browser/page.html");

/// The `chat` sample's page (its header comment documents its parameters).
const CHAT_PAGE: &str = include_str!("../browser/chat.html");

/// One browser run at a time per test binary (a run may have several
/// browsers).
static ONE_AT_A_TIME: Mutex<()> = Mutex::const_new(());

/// How long one browser run may take, from starting Chromium to the report.
pub const BROWSER_WAIT: Duration = Duration::from_secs(30);

/// How long each `apt-get` step of installing Chromium may take.
const INSTALL_WAIT: Duration = Duration::from_secs(600);

/// How long a browser run may wait for the runs ahead of it in its test
/// binary.
const QUEUE_WAIT: Duration = Duration::from_secs(8 * 30);

/// The page's own deadline: it then reports what it saw so far, with
/// `"timeout": true` (more useful than no report at all).
const PAGE_TIMEOUT: Duration = Duration::from_secs(20);

/// Largest request (head or body) the HTTP server accepts.
const MAX_REQUEST: usize = 16 << 20;

/// Flags for a quiet, self-contained headless Chromium: no sandbox (tests may
/// run as root), no GPU, nothing that reaches out to Google's servers.
/// Unless [`Launch::trusted_spki`] says otherwise, any certificate is
/// accepted too ([`ANY_CERTIFICATE`]), so `wss://` works with the tests'
/// self-signed certificates.
const CHROMIUM_FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
];

/// The flag that makes Chromium accept any certificate.
const ANY_CERTIFICATE: &str = "--ignore-certificate-errors";

/// How a browser run starts.
#[derive(Default)]
pub struct Launch {
    /// Serve the page from this listener (on 127.0.0.1): the page's origin
    /// is then `http://127.0.0.1:PORT`. Default: a fresh port.
    pub page: Option<TcpListener>,
    /// Trust the certificate chains that hold one of these public keys (the
    /// base64 SHA-256 of a SubjectPublicKeyInfo, Chromium's
    /// `--ignore-certificate-errors-spki-list`), and no other
    /// self-signed chain. Default (empty): accept any certificate.
    pub trusted_spki: Vec<String>,
}

/// The report the page posted.
#[derive(Clone, Debug)]
pub struct BrowserReport {
    /// The page's JSON report: `opened`, `protocol`, `extensions`,
    /// `messages` (`{"type": "text", "data"}` or `{"type": "binary", "len",
    /// "pattern_ok"}`), `close` (`{"code", "reason", "wasClean"}` or null),
    /// `errors`, `events`, `timeout`, `elapsed_ms`, `scenario`, `url`.
    pub json: Value,
}

/// Path of the Chromium binary: `$WSBOX_CHROMIUM`, else `/usr/bin/chromium`.
///
/// # Panics
///
/// When there is no such file, with a message saying how to install it.
pub fn chromium() -> PathBuf {
    let path = std::env::var_os("WSBOX_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    if !path.is_file() && std::env::var_os("WSBOX_CHROMIUM").is_none() {
        install_chromium();
    }
    assert!(
        path.is_file(),
        "Chromium not found at {} (the browser tests need it): install Debian's \
         `chromium` package (`apt-get install chromium`), run `.ci/run` (which \
         installs it), or point WSBOX_CHROMIUM at a Chromium binary",
        path.display()
    );
    path
}

/// On a fresh Debian machine, as root, installs Debian's `chromium` package
/// once (about 25 s), so that `cargo test` needs nothing set up beforehand.
/// Elsewhere it does nothing, and [`chromium`] says what to install.
fn install_chromium() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let root = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.trim_ascii() == b"0");
        if !root || !Path::new("/usr/bin/apt-get").exists() {
            return;
        }
        eprintln!("installing Debian's chromium for the browser tests (apt-get)");
        let apt = |args: &[&str]| {
            let Ok(mut child) = Command::new("apt-get")
                .args(args)
                .env("DEBIAN_FRONTEND", "noninteractive")
                .stdin(Stdio::null())
                .spawn()
            else {
                return false;
            };
            let deadline = Instant::now() + INSTALL_WAIT;
            loop {
                match child.try_wait() {
                    Ok(Some(status)) => return status.success(),
                    Ok(None) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(100))
                    }
                    _ => {
                        eprintln!("apt-get {args:?} took over {INSTALL_WAIT:?}; killed");
                        let _ = child.kill();
                        let _ = child.wait();
                        return false;
                    }
                }
            }
        };
        let _ = apt(&["update", "-q"])
            && apt(&["install", "-y", "-q", "--no-install-recommends", "chromium"]);
    });
}

/// Loads the page in headless Chromium; it connects to `ws_url` and runs
/// `scenario` (with extra query params), and returns its report.
///
/// `params` are added to the page's query string (e.g. `("text", "hi")` for
/// `wait-close`, `("protocols", "a,b")` for `new WebSocket(url, ["a", "b"])`).
///
/// # Panics
///
/// When Chromium is missing or exits early, when no report arrives within
/// [`BROWSER_WAIT`], or when the report is not JSON; the message includes the
/// end of Chromium's log.
pub async fn run_browser(ws_url: &str, scenario: &str, params: &[(&str, &str)]) -> BrowserReport {
    run_browser_with(Launch::default(), ws_url, scenario, params).await
}

/// Like [`run_browser`], started as `launch` says.
pub async fn run_browser_with(
    launch: Launch,
    ws_url: &str,
    scenario: &str,
    params: &[(&str, &str)],
) -> BrowserReport {
    let binary = chromium();
    // Each run ahead of this one takes at most BROWSER_WAIT once started.
    let _turn = tokio::time::timeout(QUEUE_WAIT, ONE_AT_A_TIME.lock())
        .await
        .unwrap_or_else(|_| {
            panic!("browser run ({scenario} -> {ws_url}) waited {QUEUE_WAIT:?} for its turn")
        });
    let t0 = Instant::now();
    match run(&binary, launch, ws_url, scenario, params).await {
        Ok(json) => {
            eprintln!(
                "browser {scenario} -> {ws_url}: report after {} ms: {json}",
                t0.elapsed().as_millis()
            );
            BrowserReport { json }
        }
        Err(e) => panic!("browser run ({scenario} -> {ws_url}) failed: {e:#}"),
    }
}

/// Loads `page` (`chat.html`) with each of `params` in a headless Chromium
/// of its own, all at once (as users on different machines), and returns
/// their JSON reports in the order of `params`. Each page also gets
/// `page=INDEX` and `timeout_ms`; its report must carry `"page": "INDEX"`.
///
/// # Panics
///
/// When Chromium is missing or exits early, or when the reports do not all
/// arrive within [`BROWSER_WAIT`]; the message includes the end of each
/// Chromium's log.
pub async fn run_pages(page: &str, params: &[Vec<(&str, &str)>]) -> Vec<Value> {
    let binary = chromium();
    let _turn = tokio::time::timeout(QUEUE_WAIT, ONE_AT_A_TIME.lock())
        .await
        .unwrap_or_else(|_| panic!("browser run of {page} waited {QUEUE_WAIT:?} for its turn"));
    let t0 = Instant::now();
    match run_many(&binary, page, params).await {
        Ok(reports) => {
            eprintln!(
                "browsers on {page}: reports after {} ms: {reports:?}",
                t0.elapsed().as_millis()
            );
            reports
        }
        Err(e) => panic!("browser run of {page} failed: {e:#}"),
    }
}

async fn run_many(binary: &Path, page: &str, params: &[Vec<(&str, &str)>]) -> Result<Vec<Value>> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let (tx, mut reports) = mpsc::channel(params.len().max(1));
    let _server = AbortOnDrop(tokio::spawn(serve(listener, tx)));
    let page_timeout = PAGE_TIMEOUT.as_millis().to_string();
    let mut browsers = Vec::new();
    for (index, params) in params.iter().enumerate() {
        let index = index.to_string();
        let mut query = vec![("page", index.as_str()), ("timeout_ms", &page_timeout)];
        query.extend_from_slice(params);
        let query: Vec<String> = query
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect();
        let url = format!("http://127.0.0.1:{port}/{page}?{}", query.join("&"));
        browsers.push(Chromium::start(binary, &url, ANY_CERTIFICATE)?);
    }
    let mut got: Vec<Option<Value>> = vec![None; params.len()];
    let deadline = Instant::now() + BROWSER_WAIT;
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    while got.iter().any(Option::is_none) {
        tokio::select! {
            report = reports.recv() => {
                let body = report.ok_or_else(|| anyhow!("HTTP server stopped"))?;
                let json: Value = serde_json::from_str(&body)
                    .with_context(|| format!("a page's report is not JSON: {body:?}"))?;
                let index: usize = json["page"]
                    .as_str()
                    .and_then(|p| p.parse().ok())
                    .filter(|&i| i < params.len())
                    .ok_or_else(|| anyhow!("a report without a known page: {json}"))?;
                got[index] = Some(json);
            }
            _ = tick.tick() => {
                for browser in &mut browsers {
                    if let Some(status) = browser.child.try_wait()? {
                        bail!("chromium exited early ({status}); its log:\n{}", browser.log_tail());
                    }
                }
                if Instant::now() > deadline {
                    let logs: Vec<String> = browsers.iter().map(Chromium::log_tail).collect();
                    bail!(
                        "not every page reported within {BROWSER_WAIT:?} ({got:?}); chromium's logs:\n{}",
                        logs.join("\n---\n")
                    );
                }
            }
        }
    }
    Ok(got.into_iter().flatten().collect())
}

async fn run(
    binary: &Path,
    launch: Launch,
    ws_url: &str,
    scenario: &str,
    params: &[(&str, &str)],
) -> Result<Value> {
    let listener = match launch.page {
        Some(listener) => listener,
        None => TcpListener::bind("127.0.0.1:0").await?,
    };
    let port = listener.local_addr()?.port();
    let (tx, mut reports) = mpsc::channel(4);
    let _server = AbortOnDrop(tokio::spawn(serve(listener, tx)));

    let page_timeout = PAGE_TIMEOUT.as_millis().to_string();
    let mut query = vec![
        ("ws", ws_url),
        ("scenario", scenario),
        ("timeout_ms", &page_timeout),
    ];
    query.extend_from_slice(params);
    let query: Vec<String> = query
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect();
    let page_url = format!("http://127.0.0.1:{port}/page.html?{}", query.join("&"));

    let certificates = if launch.trusted_spki.is_empty() {
        ANY_CERTIFICATE.to_string()
    } else {
        format!(
            "--ignore-certificate-errors-spki-list={}",
            launch.trusted_spki.join(",")
        )
    };
    let mut browser = Chromium::start(binary, &page_url, &certificates)?;
    let deadline = Instant::now() + BROWSER_WAIT;
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tokio::select! {
            report = reports.recv() => {
                let body = report.ok_or_else(|| anyhow!("HTTP server stopped"))?;
                return serde_json::from_str(&body).with_context(|| {
                    format!("the page's report is not JSON: {body:?}")
                });
            }
            _ = tick.tick() => {
                if let Some(status) = browser.child.try_wait()? {
                    bail!("chromium exited early ({status}); its log:\n{}", browser.log_tail());
                }
                if Instant::now() > deadline {
                    bail!(
                        "no report from the page within {BROWSER_WAIT:?}; chromium's log:\n{}",
                        browser.log_tail()
                    );
                }
            }
        }
    }
}

/// A running Chromium and its temporary directory (profile + log): dropping
/// it kills Chromium (by pid), reaps it and removes the directory.
struct Chromium {
    child: Child,
    dir: PathBuf,
}

impl Chromium {
    fn start(binary: &Path, url: &str, certificates: &str) -> Result<Chromium> {
        let dir = temp_dir()?;
        let profile = dir.join("profile");
        let spawned = std::fs::File::create(dir.join("chromium.log"))
            .and_then(|log| Ok((log.try_clone()?, log)))
            .and_then(|(out, err)| {
                Command::new(binary)
                    // Crashpad's "Crash Reports" and dconf would otherwise
                    // land in the user's ~/.config and ~/.cache.
                    .env("HOME", &dir)
                    .env("XDG_CONFIG_HOME", dir.join("config"))
                    .env("XDG_CACHE_HOME", dir.join("cache"))
                    .args(CHROMIUM_FLAGS)
                    .arg(certificates)
                    .arg(format!("--user-data-dir={}", profile.display()))
                    .arg(url)
                    .stdin(Stdio::null())
                    .stdout(out)
                    .stderr(err)
                    .spawn()
            });
        match spawned {
            Ok(child) => Ok(Chromium { child, dir }),
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                Err(e).with_context(|| format!("starting {}", binary.display()))
            }
        }
    }

    /// The last lines of Chromium's stdout/stderr, without the D-Bus noise
    /// (there is no system bus in a container; Chromium logs that a lot).
    fn log_tail(&self) -> String {
        let log = std::fs::read(self.dir.join("chromium.log")).unwrap_or_default();
        let log = String::from_utf8_lossy(&log);
        let lines: Vec<&str> = log
            .lines()
            .filter(|l| !l.contains(":ERROR:dbus/"))
            .collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        // Chromium's helper processes (zygote, renderer, ...) exit when the
        // browser process is gone.
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Err(e) = std::fs::remove_dir_all(&self.dir) {
            eprintln!("cannot remove {}: {e}", self.dir.display());
        }
    }
}

/// A new empty directory under the system's temporary directory.
fn temp_dir() -> Result<PathBuf> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let base = std::env::temp_dir();
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = base.join(format!("wsbox-browser-{}-{n}", std::process::id()));
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e).with_context(|| format!("creating {}", dir.display())),
        }
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Aborts the task when dropped.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The HTTP server: `GET /page.html` and `GET /chat.html` are the pages, `POST /report` a report
/// (its body goes to `reports`); one request per connection. Aborting this
/// task drops the connections it is serving (they live in its `JoinSet`).
async fn serve(listener: TcpListener, reports: mpsc::Sender<String>) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                if let Ok((stream, _)) = accepted {
                    let reports = reports.clone();
                    conns.spawn(async move {
                        if let Err(e) = handle(stream, reports).await {
                            eprintln!("browser harness HTTP server: {e:#}");
                        }
                    });
                }
            }
            Some(_) = conns.join_next() => {}
        }
    }
}

async fn handle(mut stream: TcpStream, reports: mpsc::Sender<String>) -> Result<()> {
    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > MAX_REQUEST {
            bail!("request head too large");
        }
        let mut chunk = [0; 8192];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(()); // e.g. a speculative connection that was never used
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next().unwrap_or_default().split(' ');
    let method = request_line.next().unwrap_or_default();
    let target = request_line.next().unwrap_or_default();
    let path = target.split('?').next().unwrap_or_default();
    let content_length = lines
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
        .map(|(_, value)| value.trim().parse::<usize>())
        .transpose()
        .context("bad Content-Length")?
        .unwrap_or(0);
    if content_length > MAX_REQUEST {
        bail!("request body too large");
    }
    let mut body = buf.split_off(head_end);
    while body.len() < content_length {
        let mut chunk = [0; 8192];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            bail!("connection closed in the request body");
        }
        body.extend_from_slice(&chunk[..n]);
    }
    body.truncate(content_length);

    match (method, path) {
        ("GET", "/page.html") => {
            respond(&mut stream, "200 OK", "text/html; charset=utf-8", PAGE).await
        }
        ("GET", "/chat.html") => {
            respond(&mut stream, "200 OK", "text/html; charset=utf-8", CHAT_PAGE).await
        }
        ("POST", "/report") => {
            let report = String::from_utf8(body).context("report is not UTF-8")?;
            respond(&mut stream, "204 No Content", "text/plain", "").await?;
            let _ = reports.send(report).await;
            Ok(())
        }
        _ => respond(&mut stream, "404 Not Found", "text/plain", "not found\n").await,
    }
}

async fn respond(
    stream: &mut TcpStream,
    status: &str,
    content_type: &str,
    body: &str,
) -> Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.shutdown().await?;
    Ok(())
}
