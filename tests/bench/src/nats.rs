//! A real `nats-server` for the fan-out figure's two wsbox nodes: started
//! on a port of its own choosing (`-p -1`) on loopback, which it says in
//! its log; killed when dropped.

use anyhow::{bail, Context, Result};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The `nats-server` binary, found as the tests find it.
pub use wsbox_testbed::nats::binary;

/// A running `nats-server`.
pub struct Nats {
    child: Child,
    /// `nats://127.0.0.1:PORT`.
    pub url: String,
}

impl Nats {
    /// Starts it, its log going to `log`, and waits (10 s at most) for
    /// the line that says where it listens for clients. Fails with what
    /// to install when there is no `nats-server`.
    pub fn start(log: &Path) -> Result<Nats> {
        let mut child = Command::new(binary())
            .args(["-a", "127.0.0.1", "-p", "-1"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| {
                format!(
                    "cannot start {}: install it (apt-get install nats-server) or point \
                     WSBOX_NATS_SERVER at it",
                    binary().display()
                )
            })?;
        let stderr = child.stderr.take().context("no stderr")?;
        let mut file = std::fs::File::create(log)?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = writeln!(file, "{line}");
                if let Some(address) = line.split("Listening for client connections on ").nth(1) {
                    let _ = tx.send(address.trim().to_string());
                }
            }
        });
        let mut nats = Nats {
            child,
            url: String::new(),
        };
        match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(address) => nats.url = format!("nats://{address}"),
            Err(_) => bail!(
                "nats-server did not say where it listens (see {})",
                log.display()
            ),
        }
        Ok(nats)
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
