//! Prepares what the tests run besides the host:
//!
//! - the sample guests (`guest/`), built once for `wasm32-wasip2` into
//!   `target/guests`; the tests find `<name>.wasm` in `env!("WSBOX_GUEST_DIR")`;
//! - a Python virtualenv with the test peers' requirements
//!   (`tests/peers/requirements.txt`) in `target/py-peers`; the tests run
//!   `env!("WSBOX_PY_PEERS")`, its interpreter;
//! - the Python and JavaScript guests (`guest/python`, `guest/js`), built
//!   with componentize-py (a virtualenv in `target/componentize-py`, pinned
//!   in `guest/python/requirements.txt`) and componentize-js (`npm install` into
//!   `target/guest-js`, pinned in `guest/js/package-lock.json`) into
//!   `target/guests/python` and `target/guests/js`; the tests find them in
//!   `env!("WSBOX_POLYGLOT_GUEST_DIR")`. Each component is rebuilt only when
//!   its source, `wit/` or the tool changed.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest_dir =
        env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR is set by cargo");
    let repo = Path::new(&manifest_dir)
        .ancestors()
        .nth(2)
        .expect("tests/testbed/ is inside the repository")
        .to_path_buf();

    build_guests(&repo);
    python_peers(&repo);
    polyglot_guests(&repo);
}

/// Environment variables that cargo sets for this build script, or that
/// configure the outer build, and that must not leak into the nested cargo
/// that builds the guests for another target.
const LEAKING: &[&str] = &[
    "CARGO_ENCODED_RUSTFLAGS",
    "CARGO_ENCODED_RUSTDOCFLAGS",
    "RUSTFLAGS",
    "RUSTDOCFLAGS",
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_TARGET",
    "CARGO_BUILD_TARGET_DIR",
    "CARGO_BUILD_RUSTFLAGS",
    "RUSTC",
    "RUSTDOC",
    "RUSTC_WRAPPER",
    "RUSTC_WORKSPACE_WRAPPER",
    "RUSTC_LINKER",
    "CARGO_MAKEFLAGS",
    "MAKEFLAGS",
    "MFLAGS",
    "CARGO_PRIMARY_PACKAGE",
    "CARGO_CRATE_NAME",
    "OUT_DIR",
    "TARGET",
    "HOST",
    "PROFILE",
    "OPT_LEVEL",
    "DEBUG",
    "NUM_JOBS",
];
const LEAKING_PREFIXES: &[&str] = &[
    "CARGO_PROFILE_",
    "CARGO_CFG_",
    "CARGO_FEATURE_",
    "CARGO_PKG_",
    "CARGO_MANIFEST_",
    "DEP_",
];

fn build_guests(repo: &Path) {
    let guest = repo.join("guest");
    let target_dir = repo.join("target").join("guests");

    // Everything in guest/ but its own target directory, which a developer's
    // `cargo build` inside guest/ would otherwise keep touching. Directories
    // are scanned recursively.
    let mut inputs: Vec<PathBuf> = fs::read_dir(&guest)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", guest.display()))
        .map(|entry| entry.expect("readable guest/ entry").path())
        .filter(|path| !path.ends_with("target"))
        .collect();
    inputs.sort();
    inputs.push(repo.join("wit"));
    for input in &inputs {
        println!("cargo:rerun-if-changed={}", input.display());
    }

    let mut cargo = Command::new(env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cargo
        // Inside guest/, so that guest/.cargo/config.toml applies.
        .current_dir(&guest)
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--manifest-path",
        ])
        .arg(guest.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir);
    for (name, _) in env::vars_os() {
        let name = name.to_string_lossy();
        if LEAKING.contains(&name.as_ref())
            || LEAKING_PREFIXES
                .iter()
                .any(|prefix| name.starts_with(prefix))
        {
            cargo.env_remove(name.as_ref());
        }
    }
    run(
        &mut cargo,
        "building the sample guests (guest/)",
        "(the guests are built for wasm32-wasip2: `rustup target add wasm32-wasip2` if it is missing)",
    );

    let out = target_dir.join("wasm32-wasip2").join("release");
    println!("cargo:rustc-env=WSBOX_GUEST_DIR={}", out.display());
}

fn python_peers(repo: &Path) {
    let requirements = repo.join("tests").join("peers").join("requirements.txt");
    let venv = repo.join("target").join("py-peers");
    let python = venv.join("bin").join("python");
    println!("cargo:rerun-if-changed={}", requirements.display());
    println!("cargo:rustc-env=WSBOX_PY_PEERS={}", python.display());
    if requirements.exists() {
        venv_with(&venv, &requirements, "the test peers");
    }
    // No Python peers (yet): nothing to install.
}

/// Makes sure the virtualenv `venv` exists and has `requirements` installed;
/// a stamp file holds the requirements last installed, so that an unchanged
/// file costs nothing. `who` names what needs it, for the messages.
fn venv_with(venv: &Path, requirements: &Path, who: &str) {
    let python = venv.join("bin").join("python");
    let wanted = fs::read_to_string(requirements)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", requirements.display()));
    let hint = format!(
        "{who} need python3 with the venv and pip modules \
         (Debian: apt-get install python3-venv python3-pip); \
         if {} is broken, delete it",
        venv.display()
    );
    if !python.exists() {
        run(
            Command::new("python3").args(["-m", "venv"]).arg(venv),
            &format!("creating the Python virtualenv for {who}"),
            &hint,
        );
    }
    let stamp = venv.join("requirements.stamp");
    if fs::read_to_string(&stamp).is_ok_and(|installed| installed == wanted) {
        return;
    }
    run(
        Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "-r",
            ])
            .arg(requirements),
        &format!("installing {} for {who}", requirements.display()),
        &hint,
    );
    fs::write(&stamp, wanted).unwrap_or_else(|e| panic!("cannot write {}: {e}", stamp.display()));
}

/// The Python and JavaScript guests: `(language, source, world, output name)`.
const POLYGLOT: &[(&str, &str, &str, &str)] = &[
    ("python", "echo.py", "wsbox:websocket/server", "echo"),
    (
        "python",
        "close_probe.py",
        "wsbox:websocket/client-command",
        "close-probe",
    ),
    ("js", "echo.js", "wsbox:websocket/server", "echo"),
    (
        "js",
        "close-probe.js",
        "wsbox:websocket/client-command",
        "close-probe",
    ),
];

fn polyglot_guests(repo: &Path) {
    let out = repo.join("target").join("guests");
    println!("cargo:rustc-env=WSBOX_POLYGLOT_GUEST_DIR={}", out.display());
    let python_dir = repo.join("guest").join("python");
    let js_dir = repo.join("guest").join("js");
    for input in [&python_dir, &js_dir] {
        println!("cargo:rerun-if-changed={}", input.display());
    }

    // The two tool chains run side by side: each is mostly one process.
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let venv = repo.join("target").join("componentize-py");
            venv_with(
                &venv,
                &python_dir.join("requirements.txt"),
                "the Python guests (componentize-py)",
            );
            let tool = venv.join("bin").join("componentize-py");
            build_polyglot(
                repo,
                "python",
                &tool,
                &venv.join("requirements.stamp"),
                &out,
            );
        });
        scope.spawn(|| {
            let tool_dir = repo.join("target").join("guest-js");
            let stamp = npm_install(&js_dir, &tool_dir);
            let tool = tool_dir
                .join("node_modules")
                .join(".bin")
                .join("componentize-js");
            build_polyglot(repo, "js", &tool, &stamp, &out);
        });
    });
}

/// Installs `guest/js/package-lock.json` into `tool_dir`, unless the
/// lock file is the one last installed there. Returns the stamp file.
fn npm_install(js_dir: &Path, tool_dir: &Path) -> PathBuf {
    let hint = "the JavaScript guests need node and npm (Debian: apt-get install nodejs npm) \
                and the npm registry; delete target/guest-js to start over";
    let lock = fs::read_to_string(js_dir.join("package-lock.json"))
        .unwrap_or_else(|e| panic!("cannot read guest/js/package-lock.json: {e}"));
    let stamp = tool_dir.join("package-lock.stamp");
    if fs::read_to_string(&stamp).is_ok_and(|installed| installed == lock)
        && tool_dir.join("node_modules").exists()
    {
        return stamp;
    }
    fs::create_dir_all(tool_dir)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", tool_dir.display()));
    for file in ["package.json", "package-lock.json"] {
        fs::copy(js_dir.join(file), tool_dir.join(file))
            .unwrap_or_else(|e| panic!("cannot copy guest/js/{file}: {e}"));
    }
    run(
        // `npm install`, not `npm ci`: npm 11's `ci` refuses a lock file
        // without every platform's optional binaries. With the lock file
        // beside it, `install` installs the locked versions.
        Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(tool_dir),
        "installing componentize-js (npm install of guest/js/package-lock.json)",
        hint,
    );
    fs::write(&stamp, lock).unwrap_or_else(|e| panic!("cannot write {}: {e}", stamp.display()));
    stamp
}

/// Builds the guests of `language` with `tool` into `out/LANGUAGE/NAME.wasm`,
/// each only if it is older than its source, `wit/` or the tool's stamp.
fn build_polyglot(repo: &Path, language: &str, tool: &Path, tool_stamp: &Path, out: &Path) {
    let dir = out.join(language);
    fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    let wit = newest(&repo.join("wit"));
    for &(lang, source, world, name) in POLYGLOT.iter().filter(|g| g.0 == language) {
        let source = repo.join("guest").join(lang).join(source);
        let target = dir.join(format!("{name}.wasm"));
        let inputs = [newest(&source), wit, newest(tool_stamp)];
        let built = fs::metadata(&target).and_then(|m| m.modified()).ok();
        if built.is_some_and(|built| inputs.iter().all(|input| *input <= built)) {
            continue;
        }
        // Written beside the target and renamed, so that a failed build
        // never leaves a file that looks up to date.
        let partial = dir.join(format!("{name}.wasm.partial"));
        let mut command = Command::new(tool);
        // Paths relative to the repository: componentize-js resolves them
        // inside a sandbox of the working directory.
        command.current_dir(repo);
        let what = format!(
            "building guest/{lang}/{}",
            source.file_name().unwrap().to_string_lossy()
        );
        if lang == "python" {
            // componentize-py bundles the whole directory it is pointed at and
            // writes __pycache__ there: give it a copy of the one module.
            let module = source.file_stem().unwrap().to_string_lossy().into_owned();
            let stage = dir.join(format!("{name}.src"));
            let _ = fs::remove_dir_all(&stage);
            fs::create_dir_all(&stage)
                .unwrap_or_else(|e| panic!("cannot create {}: {e}", stage.display()));
            fs::copy(&source, stage.join(source.file_name().unwrap()))
                .unwrap_or_else(|e| panic!("cannot copy {}: {e}", source.display()));
            command
                .args(["-d", "wit", "-w", world, "componentize", "-p"])
                // Relative, as componentize-py finds modules only below the
                // working directory.
                .arg(stage.strip_prefix(repo).unwrap_or(&stage))
                .arg(module)
                .arg("-o")
                .arg(&partial);
            run(
                &mut command,
                &what,
                "componentize-py failed: see its message above; delete target/componentize-py if the tool itself is broken",
            );
        } else {
            command
                .arg(
                    Path::new("guest")
                        .join("js")
                        .join(source.file_name().unwrap()),
                )
                .args([
                    "-w",
                    "wit",
                    "-n",
                    world,
                    "--disable",
                    "http",
                    "fetch-event",
                    "-o",
                ])
                .arg(&partial);
            run(
                &mut command,
                &what,
                "componentize-js failed: see its message above; delete target/guest-js if the tool itself is broken",
            );
        }
        fs::rename(&partial, &target).unwrap_or_else(|e| {
            panic!(
                "cannot move {} to {}: {e}",
                partial.display(),
                target.display()
            )
        });
    }
}

/// The newest modification time of `path`, or of any file below it.
fn newest(path: &Path) -> std::time::SystemTime {
    let meta = fs::metadata(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let mut time = meta.modified().expect("file times are supported");
    if meta.is_dir() {
        for entry in
            fs::read_dir(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
        {
            time = time.max(newest(&entry.expect("readable directory entry").path()));
        }
    }
    time
}

/// Runs `command`, panicking with its output if it fails.
fn run(command: &mut Command, what: &str, hint: &str) {
    let output = command.output().unwrap_or_else(|e| {
        panic!(
            "{what}: cannot run {:?}: {e}\n{hint}",
            command.get_program()
        )
    });
    if !output.status.success() {
        panic!(
            "{what} failed ({}):\n{}{}\n{hint}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
        );
    }
}
