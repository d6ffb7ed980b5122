//! Python virtualenvs: the test peers' one, and componentize-py's.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::steps::{failed, locked, run};

/// Creates or updates `target/py-peers` with `tests/peers/requirements.txt`
/// and returns its interpreter.
pub(crate) fn peers() -> Result<PathBuf, String> {
    let venv = crate::target().join("py-peers");
    let requirements = crate::repo().join("tests/peers/requirements.txt");
    locked("py-peers", || {
        ensure(&venv, &requirements, "the Python test peers (tests/peers)")?;
        Ok(venv.join("bin").join("python"))
    })
}

/// Makes sure the virtualenv `venv` exists and has `requirements` installed.
/// A stamp file holds the requirements last installed, so that an unchanged
/// file costs nothing. `who` names what needs it, for the messages. The
/// caller holds the lock for `venv`.
pub(crate) fn ensure(venv: &Path, requirements: &Path, who: &str) -> Result<(), String> {
    let python = venv.join("bin").join("python");
    let stamp = venv.join("requirements.stamp");
    let wanted = fs::read_to_string(requirements).map_err(|e| failed("read", requirements, e))?;
    if python.exists() && fs::read_to_string(&stamp).is_ok_and(|installed| installed == wanted) {
        return Ok(());
    }
    let hint = format!(
        "{who} need python3 with its venv and pip modules, and PyPI: \
         on Debian, apt-get install python3-venv python3-pip \
         (if {} is broken, delete it)",
        venv.display()
    );
    if !python.exists() {
        let created = run(
            Command::new("python3").args(["-m", "venv"]).arg(venv),
            &format!("creating the Python virtualenv {}", venv.display()),
            &hint,
        );
        if created.is_err() {
            // Without ensurepip, venv leaves an interpreter and no pip.
            let _ = fs::remove_dir_all(venv);
        }
        created?;
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
    )?;
    fs::write(&stamp, wanted).map_err(|e| failed("write", &stamp, e))
}
