//! The servers and clients the benchmark starts as processes, and what it
//! reads about them from `/proc`: CPU time, resident memory, mappings.

use anyhow::{Context, Result};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A server process, killed when dropped.
pub(super) struct Server {
    pub(super) child: Child,
    pub(super) url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// The process id.
    pub(super) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM (a graceful shutdown) and waits for the process to
    /// exit, at most `within`.
    pub(super) fn terminate(&mut self, within: Duration) {
        // One already waited for may have lent its pid to another process.
        if !matches!(self.child.try_wait(), Ok(None)) {
            return;
        }
        let Ok(pid) = libc::pid_t::try_from(self.child.id()) else {
            return;
        };
        // SAFETY: kill has no memory preconditions; the pid is our child's,
        // which has not been waited for, so it is still its own.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// How to start one target.
#[derive(Clone)]
pub(super) struct Target {
    pub(super) name: String,
    pub(super) program: PathBuf,
    pub(super) args: Vec<String>,
}

impl Target {
    /// `` `program args` ``, for the report.
    pub(super) fn describe(&self) -> String {
        let program = self.program.file_name().map_or_else(
            || self.program.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        format!("`{} {}`", program, self.args.join(" "))
    }

    /// Where its stderr goes.
    pub(super) fn log(&self, logs: &Path) -> PathBuf {
        logs.join(format!("{}.log", self.name))
    }

    /// Starts it and waits (120 s at most: a large handler component takes
    /// seconds to compile) for the `ws://ADDR` line.
    pub(super) fn start(&self, logs: &Path) -> Result<Server> {
        std::fs::create_dir_all(logs)?;
        let log = self.log(logs);
        let mut child = Command::new(&self.program)
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log)?)
            .spawn()
            .with_context(|| format!("starting {}", self.program.display()))?;
        let stdout = child.stdout.take().context("no stdout")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(line)) = lines.next() {
                let _ = tx.send(line);
            }
            // Keep draining so the server never blocks on a full pipe.
            for _ in lines {}
        });
        let mut server = Server {
            child,
            url: String::new(),
        };
        let line = rx.recv_timeout(Duration::from_secs(120)).with_context(|| {
            // A server that refused to start said why on stderr.
            let said = std::fs::read_to_string(&log).unwrap_or_default();
            format!(
                "{} did not say where it listens: {}",
                self.name,
                said.lines().last().unwrap_or("(nothing on stderr)")
            )
        })?;
        let address = line
            .split("ws://")
            .nth(1)
            .with_context(|| format!("{}: no ws:// in {line:?}", self.name))?
            .trim()
            .trim_end_matches('/')
            .to_string();
        server.url = format!("ws://{address}/");
        Ok(server)
    }
}

/// A `loadgen` run that holds its connections open until its stdin
/// closes (`scale`, `deflate-hold`), and the one line it printed once they
/// were all open.
pub(super) struct Holding {
    child: Child,
    line: String,
}

impl Holding {
    /// Runs `loadgen`, waits for its line, and when there is one, 500 ms
    /// more for the server to settle. Fails when `loadgen` cannot run.
    pub(super) fn start(loadgen: &mut Command) -> Result<Holding, String> {
        let mut child = loadgen
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot run loadgen: {e}"))?;
        let stdout = child.stdout.take().expect("piped");
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let holding = Holding { child, line };
        if holding.held().is_some() {
            std::thread::sleep(Duration::from_millis(500));
        }
        Ok(holding)
    }

    /// The line, when `loadgen` printed one: the connections are held.
    pub(super) fn held(&self) -> Option<&str> {
        Some(self.line.trim()).filter(|line| !line.is_empty())
    }

    /// Lets go of the connections and waits for `loadgen` to end; when it
    /// never printed its line, why it failed.
    pub(super) fn release(mut self) -> Result<(), String> {
        let held = self.held().is_some();
        drop(self.child.stdin.take());
        let out = self.child.wait_with_output();
        if held {
            return Ok(());
        }
        Err(match out {
            Ok(out) => format!("loadgen failed ({}; its stderr is above)", out.status),
            Err(e) => e.to_string(),
        })
    }
}

/// `/proc/PID/stat` user + system CPU time, in seconds.
pub(super) fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (hz > 0).then(|| ticks as f64 / hz as f64)
}

/// The first three fields of `/proc/loadavg`: other work on the machine
/// skews the figures, so the report shows it.
pub(super) fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(", "))
        .unwrap_or_else(|_| "unknown".into())
}

/// `/proc/PID/status` VmRSS, in KiB.
pub(super) fn rss_kib(pid: u32) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// `/proc/PID/maps` lines: the memory mappings, which `vm.max_map_count`
/// bounds.
pub(super) fn maps(pid: u32) -> Option<usize> {
    std::fs::read_to_string(format!("/proc/{pid}/maps"))
        .ok()
        .map(|m| m.lines().count())
}

/// Sets up the Node `ws` server in `dir` (npm install of `ws`, and the
/// server script); the reason when that is not possible.
pub(super) fn node_target(dir: &Path) -> Result<Target, String> {
    node_script_target(dir, "echo-server.js", NODE_SERVER, "node-ws")
}

/// The Node `ws` broadcast server of the fan-out figure.
pub(super) fn node_broadcast_target(dir: &Path) -> Result<Target, String> {
    node_script_target(
        dir,
        "broadcast-server.js",
        crate::broadcast::NODE_SERVER,
        "node-ws",
    )
}

/// The Node `ws` echo server with `perMessageDeflate` (`options`, a JS
/// object literal: `{}` for ws's defaults), named `name`.
pub(super) fn node_deflate_target(dir: &Path, options: &str, name: &str) -> Result<Target, String> {
    let file = format!("{name}.js");
    let script = NODE_DEFLATE_SERVER.replace("OPTIONS", options);
    node_script_target(dir, &file, &script, name)
}

/// Installs `ws` in `dir` and writes `source` there as `file`: a target
/// named `name` and the Node version.
fn node_script_target(dir: &Path, file: &str, source: &str, name: &str) -> Result<Target, String> {
    let version = Command::new("node")
        .arg("--version")
        .output()
        .map_err(|e| format!("no `node` ({e})"))?;
    if !version.status.success() {
        return Err("`node --version` failed".into());
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    if !dir.join("node_modules/ws/package.json").exists() {
        eprintln!("bench: npm install ws into {}", dir.display());
        let _ = std::fs::write(dir.join("package.json"), "{\"private\": true}\n");
        let out = Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--silent", "ws@8"])
            .current_dir(dir)
            .output()
            .map_err(|e| format!("no `npm` ({e})"))?;
        if !out.status.success() {
            return Err(format!(
                "`npm install ws` failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
    }
    let script = dir.join(file);
    std::fs::write(&script, source).map_err(|e| format!("{}: {e}", script.display()))?;
    Ok(Target {
        name: format!(
            "{name} (Node {})",
            String::from_utf8_lossy(&version.stdout).trim()
        ),
        program: "node".into(),
        args: vec![script.display().to_string()],
    })
}

/// The Node echo server: npm `ws` at its defaults, as its README shows.
const NODE_SERVER: &str = r#"// Written by the wsbox benchmark (tests/bench): a plain `ws` echo server.
const { WebSocketServer } = require('ws');
const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
wss.on('listening', () => console.log(`listening on ws://127.0.0.1:${wss.address().port}`));
wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
});
"#;

/// The Node echo server with permessage-deflate: npm `ws` with
/// `perMessageDeflate: OPTIONS` (ws's defaults for `{}`: zlib level 6 at 15
/// bits, 1024-byte threshold, context takeover), as its README shows.
const NODE_DEFLATE_SERVER: &str = r#"// Written by the wsbox benchmark (tests/bench): a `ws` echo server with permessage-deflate.
const { WebSocketServer } = require('ws');
const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: OPTIONS });
wss.on('listening', () => console.log(`listening on ws://127.0.0.1:${wss.address().port}`));
wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
});
"#;
