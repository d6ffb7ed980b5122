//! The `wsbox` command line: parses the arguments, starts logging and the
//! runtime, and runs the command (the parts are in `cli/`).

mod cli;

use clap::{CommandFactory, FromArgMatches};
use cli::args::{Cli, Command, LogFormat};
use cli::log::{init_logging, one_line};
use cli::run::run;
use cli::serve::serve;
use std::process::ExitCode;

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let format = cli.log_format;
    init_logging(format);
    // `run` drives one guest, whose calls are sequential: one thread saves
    // the cross-thread wake-ups between its socket tasks and the guest.
    // `serve` runs many connections and wants every core.
    let runtime = match &cli.command {
        Command::Run(_) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        Command::Serve(_) => tokio::runtime::Runtime::new(),
    };
    let runtime = match runtime {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("wsbox: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let serve_matches = matches.subcommand_matches("serve").cloned();
    let result = runtime.block_on(async {
        match cli.command {
            Command::Run(args) => run(args).await,
            Command::Serve(args) => serve(args, serve_matches, format).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            let line = one_line(&format!("{e:#}"));
            match format {
                LogFormat::Text => eprintln!("wsbox: {line}"),
                LogFormat::Json => tracing::error!(target: "wsbox::cli", "{line}"),
            }
            ExitCode::from(2)
        }
    }
}
