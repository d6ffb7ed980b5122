//! The README's demo: both halves of wsbox on loopback. `wsbox serve`'s
//! engine runs the `close-reporter` handler guest, one sandboxed instance per
//! connection; `wsbox run`'s engine runs the `echo-client` guest against it.
//! Each side prints what it saw, including the other side's close status.
//!
//! It builds only those two guests (the tests build them all).

use std::sync::Arc;
use wsbox::{Config, Exit, Output, Policy, Runner, ServeConfig, Server};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    build_guests(&["close-reporter", "echo-client"])?;
    let handler = wsbox_testbed::guest("close-reporter");
    let client = wsbox_testbed::guest("echo-client");

    let serve_config = ServeConfig {
        guest_output: Arc::new(|line: &wsbox::GuestLine<'_>| {
            println!("[handler for {}] {}", line.client, line.text)
        }),
        ..ServeConfig::default()
    };
    let server = Server::new(&handler, serve_config)?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(async move {
        server
            .serve(listener, async {
                let _ = stopped.await;
            })
            .await
    });
    println!(
        "[wsbox serve] {} on ws://127.0.0.1:{port}",
        handler.display()
    );

    let url = format!("ws://127.0.0.1:{port}/demo");
    println!("[wsbox run] {} {url}", client.display());
    let config = Config {
        policy: Policy::from_patterns(&[format!("ws://127.0.0.1:{port}")])?,
        ..Config::default()
    };
    let runner = Runner::new()?;
    let component = runner.load(&client)?;
    let args = ["echo-client", &url, "hello from one sandbox", "to another"].map(String::from);
    let out = runner
        .run(&component, Arc::new(config), &args, Output::Inherit)
        .await?;

    let _ = stop.send(());
    serving.await??;
    match out.exit {
        Exit::Code(0) => {
            println!("[wsbox] done: each side saw the other's close status");
            Ok(())
        }
        other => anyhow::bail!("the client guest ended with {other:?}"),
    }
}

/// Builds `packages` of `guest/` into `target/guests`, where the tests'
/// build puts them too, showing cargo's progress.
fn build_guests(packages: &[&str]) -> anyhow::Result<()> {
    let mut cargo = wsbox_testbed::rust_guests::build_command(&wsbox_testbed::repo(), packages);
    println!("[demo] building the guests {}", packages.join(", "));
    let status = cargo.status().map_err(|e| {
        anyhow::anyhow!(
            "building the guests: cannot run {:?}: {e}\n{}",
            cargo.get_program(),
            wsbox_testbed::rust_guests::HINT
        )
    })?;
    if !status.success() {
        anyhow::bail!(
            "building the guests failed ({status})\n{}",
            wsbox_testbed::rust_guests::HINT
        );
    }
    Ok(())
}
