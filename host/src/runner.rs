//! A small runner for the common case: run a `client`-world command
//! component with websockets and WASI, as `wsbox run` does.

use crate::config::Config;
use crate::error::{Error, Result};
use crate::escape::escape;
use crate::sandbox::{self, InstanceLimits, InstanceState};
use std::path::Path;
use std::sync::Arc;
use wasmtime::component::{Component, Linker};
use wasmtime::Engine;
use wasmtime_wasi::p2::bindings::CommandPre;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{I32Exit, WasiCtxBuilder};

/// How much guest output [`Output::Capture`] keeps per stream.
const CAPTURE_LIMIT: usize = 16 << 20;

/// Where the guest's stdout and stderr go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// To this process's stdout and stderr.
    Inherit,
    /// Into [`RunOutput::stdout`] and [`RunOutput::stderr`].
    Capture,
}

/// How a guest run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    /// The guest returned or exited with this code (WASI 0.2 has only 0 and 1
    /// unless the guest calls `exit` with a code of its own).
    Code(i32),
    /// The guest trapped; the message says where. It names the guest's own
    /// functions, so its control characters are escaped (`\x1b`, `\n`, ...)
    /// and it prints as one line.
    Trap(String),
}

/// The result of [`Runner::run`].
#[derive(Debug, Clone)]
pub struct RunOutput {
    /// How the guest ended.
    pub exit: Exit,
    /// Captured stdout (empty with [`Output::Inherit`]).
    pub stdout: String,
    /// Captured stderr (empty with [`Output::Inherit`]).
    pub stderr: String,
}

/// Compiles and runs `client`-world components. Create one and reuse it:
/// the engine and linker are shared by every run.
///
/// ```no_run
/// use std::sync::Arc;
/// use wsbox::{Config, Output, Policy, Runner};
///
/// # async fn demo() -> wsbox::Result<()> {
/// let runner = Runner::new()?;
/// let component = runner.load("echo_client.wasm")?;
/// let config = Config {
///     policy: Policy::from_patterns(&["ws://127.0.0.1:9001"])?,
///     ..Config::default()
/// };
/// let args = ["ws://127.0.0.1:9001/".to_string(), "hello".to_string()];
/// let out = runner.run(&component, Arc::new(config), &args, Output::Inherit).await?;
/// println!("{:?}", out.exit);
/// # Ok(()) }
/// ```
pub struct Runner {
    engine: Engine,
    linker: Linker<InstanceState>,
}

impl Runner {
    /// An engine with the component model and a linker with WASI 0.2 and
    /// `wsbox:websocket/types`.
    pub fn new() -> Result<Self> {
        let engine = sandbox::engine(None)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .and_then(|()| crate::add_to_linker_async(&mut linker))
            .map_err(|e| Error::runtime("cannot add WASI and wsbox:websocket to the linker", e))?;
        Ok(Runner { engine, linker })
    }

    /// The engine, for embedders that add their own components.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Reads and compiles a component, and checks that it is a `client`
    /// world command.
    pub fn load(&self, path: impl AsRef<Path>) -> Result<Component> {
        let path = path.as_ref();
        let component = load_component(&self.engine, path)?;
        self.pre(&component, &path.display().to_string())?;
        Ok(component)
    }

    fn pre(&self, component: &Component, shown: &str) -> Result<CommandPre<InstanceState>> {
        let wrong = |e: wasmtime::Error| Error::WrongWorld {
            path: shown.to_string(),
            world: "wsbox:websocket/client",
            source: e.into(),
        };
        let pre = self.linker.instantiate_pre(component).map_err(wrong)?;
        CommandPre::new(pre).map_err(wrong)
    }

    /// Runs the component's `wasi:cli/run` with `args` as its arguments
    /// (`args[0]` is the program name the guest sees), in a sandbox with the
    /// default [`InstanceLimits`]. Before it returns, every websocket the
    /// guest left open is closed (1001) and its connection has ended, or
    /// the close timeout has passed.
    pub async fn run(
        &self,
        component: &Component,
        config: Arc<Config>,
        args: &[String],
        output: Output,
    ) -> Result<RunOutput> {
        let limits = InstanceLimits::default();
        self.run_limited(component, config, &limits, args, output)
            .await
    }

    /// Like [`run`](Self::run), in a sandbox with `limits`.
    pub async fn run_limited(
        &self,
        component: &Component,
        config: Arc<Config>,
        limits: &InstanceLimits,
        args: &[String],
        output: Output,
    ) -> Result<RunOutput> {
        let broker = config.broker.clone();
        let pre = self.pre(component, "component")?;
        let mut wasi = WasiCtxBuilder::new();
        wasi.args(args);
        let pipes = match output {
            Output::Inherit => {
                wasi.inherit_stdout().inherit_stderr();
                None
            }
            Output::Capture => {
                let (out, err) = (
                    MemoryOutputPipe::new(CAPTURE_LIMIT),
                    MemoryOutputPipe::new(CAPTURE_LIMIT),
                );
                wasi.stdout(out.clone()).stderr(err.clone());
                Some((out, err))
            }
        };
        let mut store = sandbox::store(&self.engine, wasi.build(), config, limits);
        let cpu = sandbox::cpu(&store);
        let result = match cpu.run(pre.instantiate_async(&mut store)).await {
            Ok(command) => cpu.run(command.wasi_cli_run().call_run(&mut store)).await,
            Err(e) => Err(e),
        };
        let trapped = matches!(&result, Err(e) if e.downcast_ref::<I32Exit>().is_none());
        sandbox::finish(store, trapped).await;
        // What the guest published gets to the cluster before the run ends.
        broker.flush().await;
        let exit = match result {
            Ok(Ok(())) => Exit::Code(0),
            Ok(Err(())) => Exit::Code(1),
            Err(e) => match e.downcast_ref::<I32Exit>() {
                Some(I32Exit(code)) => Exit::Code(*code),
                None => Exit::Trap(escape(sandbox::describe_trap(&e, limits))),
            },
        };
        let text = |pipe: &MemoryOutputPipe| String::from_utf8_lossy(&pipe.contents()).into_owned();
        let (stdout, stderr) = match &pipes {
            Some((out, err)) => (text(out), text(err)),
            None => (String::new(), String::new()),
        };
        Ok(RunOutput {
            exit,
            stdout,
            stderr,
        })
    }
}

/// Reads and compiles a component file, with clear errors for a missing
/// file, a core module or anything else that is not a component.
pub(crate) fn load_component(engine: &Engine, path: &Path) -> Result<Component> {
    let shown = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| Error::Read {
        path: shown.clone(),
        source,
    })?;
    if !bytes.starts_with(b"\0asm") {
        return Err(Error::NotAComponent {
            path: shown,
            reason: "it does not start with the WebAssembly magic bytes".into(),
        });
    }
    if bytes.get(4..8) == Some(&[1, 0, 0, 0]) {
        return Err(Error::NotAComponent {
            path: shown,
            reason: "it is a core WebAssembly module; build it for wasm32-wasip2, or wrap it with `wasm-tools component new`".into(),
        });
    }
    Component::from_binary(engine, &bytes).map_err(|e| Error::Compile {
        path: shown,
        source: e.into(),
    })
}
