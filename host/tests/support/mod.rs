//! Helpers for the CLI tests: every wait on a `wsbox` process or on the
//! network has a deadline, past which the test fails (and the process is
//! killed) with a message that says what it was waiting for.

#![allow(dead_code, unused_imports)] // Each test binary uses a part.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

/// How long any one wait may take: a `wsbox` process compiles its
/// component first, which is slow on a loaded machine.
pub const WAIT: Duration = Duration::from_secs(120);

/// Waits for `child` to exit, at most [`WAIT`]; past it, kills it and fails
/// the test naming `what`.
pub fn wait_within(child: &mut Child, what: &str) -> ExitStatus {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(status) = child.try_wait().expect("the child can be waited for") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not exit within {WAIT:?} (killed)");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs `command` to its end with stdin empty and stdout and stderr
/// captured, like [`Command::output`], at most [`WAIT`].
pub fn output_within(command: &mut Command, what: &str) -> Output {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{what} cannot start: {e}"));
    let stdout = read_all(child.stdout.take().unwrap());
    let stderr = read_all(child.stderr.take().unwrap());
    let status = wait_within(&mut child, what);
    Output {
        status,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    }
}

/// Everything `pipe` gives until it ends, read on a thread of its own.
fn read_all(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut all = Vec::new();
        let _ = pipe.read_to_end(&mut all);
        all
    })
}

/// The first line `child` prints on stdout (its stdout must be piped), at
/// most [`WAIT`]; past it, kills it and fails the test naming `what`.
/// Later output on stdout is not read.
pub fn first_line_within(child: &mut Child, what: &str) -> String {
    let stdout = child.stdout.take().expect("stdout is piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut first = String::new();
        let _ = BufReader::new(stdout).read_line(&mut first);
        let _ = tx.send(first);
    });
    match rx.recv_timeout(WAIT) {
        Ok(line) => line,
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} printed no line within {WAIT:?} (killed)");
        }
    }
}

/// How long a wait on the network may take, and the helper that bounds
/// one by it.
pub use wsbox_testbed::wait::{within, WAIT as NET_WAIT};

/// A `wsbox serve` process started by a test; killed when dropped.
pub struct Serving {
    /// The process.
    pub child: Child,
    /// The listening line's scheme and address, e.g. `ws://127.0.0.1:PORT`.
    pub url: String,
    /// The port it listens on.
    pub port: u16,
    /// Its later stdout lines (`metrics on ...`).
    pub stdout: std::sync::mpsc::Receiver<String>,
    /// Its stderr lines.
    pub stderr: std::sync::mpsc::Receiver<String>,
}

/// Starts `wsbox ARGS...` (a `serve` command) and waits for its listening
/// line.
pub fn serve(args: &[&std::ffi::OsStr]) -> Serving {
    let mut child = Command::new(env!("CARGO_BIN_EXE_wsbox"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("wsbox serve starts");
    let lines = |pipe: Box<dyn Read + Send>| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                eprintln!("wsbox: {line}");
                let _ = tx.send(line);
            }
        });
        rx
    };
    let stdout = lines(Box::new(child.stdout.take().unwrap()));
    let stderr = lines(Box::new(child.stderr.take().unwrap()));
    let first = match stdout.recv_timeout(WAIT) {
        Ok(line) => line,
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            let err: Vec<String> = stderr.try_iter().collect();
            panic!("wsbox serve printed no listening line within {WAIT:?}: {err:?}");
        }
    };
    let url = first
        .strip_prefix("wsbox serve: listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
        .to_string();
    let port = url.rsplit(':').next().unwrap().parse().unwrap();
    Serving {
        child,
        url,
        port,
        stdout,
        stderr,
    }
}

impl Serving {
    /// The next stderr line that contains `needle`, within [`WAIT`].
    pub fn stderr_line(&self, needle: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stderr.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => continue,
                Err(_) => panic!("no stderr line with {needle:?} within {WAIT:?}"),
            }
        }
    }

    /// Sends `signal` (e.g. `-HUP`) to the process.
    pub fn signal(&self, signal: &str) {
        let mut kill = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .spawn()
            .unwrap();
        assert!(wait_within(&mut kill, "kill").success());
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
