//! `wsbox run`: one client guest, its exit code wsbox's.

use super::args::RunArgs;
use anyhow::{bail, Context, Result};
use std::process::ExitCode;
use std::sync::Arc;
use wsbox::{Exit, KeepaliveConfig, Output, Runner};

pub(crate) async fn run(args: RunArgs) -> Result<ExitCode> {
    let mut config = args.limits.config().await?;
    config.limits.keepalive = KeepaliveConfig::new(args.keepalive.0, args.keepalive_timeout.0)
        .map_err(anyhow::Error::msg)?;
    let config = Arc::new(config);
    let runner = Runner::new()?;
    let component = runner.load(&args.component)?;
    let name = args
        .component
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "guest".into());
    let guest_args: Vec<String> = std::iter::once(name).chain(args.args).collect();
    let limits = args.limits.instance();
    let out = runner
        .run_limited(&component, config, &limits, &guest_args, Output::Inherit)
        .await
        .context("running the guest")?;
    match out.exit {
        Exit::Code(code) => Ok(ExitCode::from(u8::try_from(code).unwrap_or(1))),
        Exit::Trap(trap) => bail!("the guest trapped: {trap}"),
    }
}
