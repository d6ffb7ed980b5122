//! The Python and JavaScript guests (`guest/python`, `guest/js`), built with
//! componentize-py (a virtualenv in `target/componentize-py`, pinned in
//! `guest/python/requirements.txt`) and componentize-js (`npm install` into
//! `target/guest-js`, pinned in `guest/js/package-lock.json`) into
//! `target/guests/python` and `target/guests/js`. Each component is rebuilt
//! only when its source, `wit/` or the tool changed.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::steps::{failed, locked, newest, run};
use crate::venv;

/// A guest written in Python or JavaScript.
struct Guest {
    /// `python` or `js`, the directory under `guest/` that holds it.
    language: &'static str,
    /// Its source file in that directory.
    source: &'static str,
    /// The WIT world it targets.
    world: &'static str,
    /// The name of its component file, without `.wasm`.
    name: &'static str,
}

const GUESTS: &[Guest] = &[
    Guest {
        language: "python",
        source: "echo.py",
        world: "wsbox:websocket/server",
        name: "echo",
    },
    Guest {
        language: "python",
        source: "close_probe.py",
        world: "wsbox:websocket/client-command",
        name: "close-probe",
    },
    Guest {
        language: "python",
        source: "chat.py",
        world: "wsbox:websocket/server",
        name: "chat",
    },
    Guest {
        language: "js",
        source: "echo.js",
        world: "wsbox:websocket/server",
        name: "echo",
    },
    Guest {
        language: "js",
        source: "close-probe.js",
        world: "wsbox:websocket/client-command",
        name: "close-probe",
    },
    Guest {
        language: "js",
        source: "chat.js",
        world: "wsbox:websocket/server",
        name: "chat",
    },
];

/// What the JavaScript guests need, said when they cannot be built.
const JS_HINT: &str = "the JavaScript guests (guest/js) need node ^20.19 or >= 22.12, npm, and \
                       the npm registry: on Debian, apt-get install nodejs npm \
                       (if target/guest-js is broken, delete it)";

/// Builds the Python guests, with componentize-py, and returns their
/// directory.
pub(crate) fn python() -> Result<PathBuf, String> {
    let venv = crate::target().join("componentize-py");
    locked("componentize-py", || {
        venv::ensure(
            &venv,
            &crate::repo().join("guest/python/requirements.txt"),
            "the Python guests (guest/python, built with componentize-py)",
        )?;
        let tool = venv.join("bin").join("componentize-py");
        build("python", &tool, &venv.join("requirements.stamp"))
    })
}

/// Builds the JavaScript guests, with componentize-js, and returns their
/// directory.
pub(crate) fn js() -> Result<PathBuf, String> {
    let tool_dir = crate::target().join("guest-js");
    locked("guest-js", || {
        let stamp = npm_install(&tool_dir)?;
        let tool = tool_dir
            .join("node_modules")
            .join(".bin")
            .join("componentize-js");
        // componentize-js is a node script: a build needs a node it runs on.
        if !stale("js", &stamp)?.is_empty() {
            check_node()?;
        }
        build("js", &tool, &stamp)
    })
}

/// Installs `guest/js/package-lock.json` into `tool_dir`, unless the lock
/// file is the one last installed there. Returns the stamp file.
fn npm_install(tool_dir: &Path) -> Result<PathBuf, String> {
    let js_dir = crate::repo().join("guest").join("js");
    let lock_file = js_dir.join("package-lock.json");
    let lock = fs::read_to_string(&lock_file).map_err(|e| failed("read", &lock_file, e))?;
    let stamp = tool_dir.join("package-lock.stamp");
    if fs::read_to_string(&stamp).is_ok_and(|installed| installed == lock)
        && tool_dir.join("node_modules").exists()
    {
        return Ok(stamp);
    }
    check_node()?;
    fs::create_dir_all(tool_dir).map_err(|e| failed("create", tool_dir, e))?;
    for file in ["package.json", "package-lock.json"] {
        let from = js_dir.join(file);
        fs::copy(&from, tool_dir.join(file)).map_err(|e| failed("copy", &from, e))?;
    }
    run(
        // `npm install`, not `npm ci`: npm 11's `ci` refuses a lock file
        // without every platform's optional binaries. With the lock file
        // beside it, `install` installs the locked versions.
        Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(tool_dir),
        "installing componentize-js (npm install of guest/js/package-lock.json)",
        JS_HINT,
    )?;
    fs::write(&stamp, lock).map_err(|e| failed("write", &stamp, e))?;
    Ok(stamp)
}

/// Fails unless `node` runs and is a version componentize-js supports.
fn check_node() -> Result<(), String> {
    let output = Command::new("node")
        .arg("--version")
        .output()
        .map_err(|e| format!("cannot run `node`: {e}\n{JS_HINT}"))?;
    let version = String::from_utf8_lossy(&output.stdout).trim().to_string();
    let mut numbers = version
        .trim_start_matches('v')
        .split('.')
        .map(|n| n.parse::<u32>().unwrap_or(0));
    let (major, minor) = (numbers.next().unwrap_or(0), numbers.next().unwrap_or(0));
    if (major == 20 && minor >= 19) || (major == 22 && minor >= 12) || major >= 23 {
        Ok(())
    } else {
        Err(format!(
            "componentize-js does not run on node {version}\n{JS_HINT}"
        ))
    }
}

/// The guests of `language` older than their source, `wit/` or the tool's
/// stamp (or not built at all).
fn stale(language: &str, tool_stamp: &Path) -> Result<Vec<&'static Guest>, String> {
    let repo = crate::repo();
    let dir = crate::target().join("guests").join(language);
    let wit = newest(&repo.join("wit"))?;
    let tool = newest(tool_stamp)?;
    let mut stale = Vec::new();
    for guest in GUESTS.iter().filter(|g| g.language == language) {
        let source = newest(&repo.join("guest").join(language).join(guest.source))?;
        let built = fs::metadata(dir.join(format!("{}.wasm", guest.name)))
            .and_then(|m| m.modified())
            .ok();
        if !built.is_some_and(|built| [source, wit, tool].iter().all(|input| *input <= built)) {
            stale.push(guest);
        }
    }
    Ok(stale)
}

/// Builds the stale guests of `language` with `tool` into
/// `target/guests/LANGUAGE/NAME.wasm` and returns that directory.
fn build(language: &str, tool: &Path, tool_stamp: &Path) -> Result<PathBuf, String> {
    let repo = crate::repo();
    let dir = crate::target().join("guests").join(language);
    fs::create_dir_all(&dir).map_err(|e| failed("create", &dir, e))?;
    for guest in stale(language, tool_stamp)? {
        let (lang, world, name) = (guest.language, guest.world, guest.name);
        let source = repo.join("guest").join(lang).join(guest.source);
        let file_name = source.file_name().expect("a source file").to_owned();
        let target = dir.join(format!("{name}.wasm"));
        // Written beside the target and renamed, so that a failed build
        // never leaves a file that looks up to date.
        let partial = dir.join(format!("{name}.wasm.partial"));
        let mut command = Command::new(tool);
        // Paths relative to the repository: componentize-js resolves them
        // inside a sandbox of the working directory.
        command.current_dir(&repo);
        let what = format!("building guest/{lang}/{}", file_name.to_string_lossy());
        if lang == "python" {
            // componentize-py bundles the whole directory it is pointed at and
            // writes __pycache__ there: give it a copy of the one module.
            let module = source
                .file_stem()
                .expect("a source file")
                .to_string_lossy()
                .into_owned();
            let stage = dir.join(format!("{name}.src"));
            let _ = fs::remove_dir_all(&stage);
            fs::create_dir_all(&stage).map_err(|e| failed("create", &stage, e))?;
            fs::copy(&source, stage.join(&file_name)).map_err(|e| failed("copy", &source, e))?;
            command
                .args(["-d", "wit", "-w", world, "componentize", "-p"])
                // Relative, as componentize-py finds modules only below the
                // working directory.
                .arg(stage.strip_prefix(&repo).unwrap_or(&stage))
                .arg(module)
                .arg("-o")
                .arg(&partial);
            run(
                &mut command,
                &what,
                "componentize-py failed: see its message above; \
                 if target/componentize-py is broken, delete it",
            )?;
        } else {
            command
                .arg(Path::new("guest").join("js").join(&file_name))
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
                "componentize-js failed: see its message above; \
                 if target/guest-js is broken, delete it",
            )?;
        }
        fs::rename(&partial, &target).map_err(|e| failed("rename", &partial, e))?;
    }
    Ok(dir)
}
