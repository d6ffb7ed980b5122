//! What the preparations are made of: commands that say what to install
//! when they fail, a lock shared by test binaries, and file times.

use std::fmt::Display;
use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::SystemTime;

/// Runs `command`, doing `what`; a failure carries its output and `hint`,
/// which says what to install.
pub(crate) fn run(command: &mut Command, what: &str, hint: &str) -> Result<(), String> {
    let output = command.output().map_err(|e| {
        format!(
            "{what}: cannot run `{}`: {e}\n{hint}",
            command.get_program().to_string_lossy()
        )
    })?;
    if !output.status.success() {
        let said = [&output.stdout, &output.stderr]
            .map(|out| String::from_utf8_lossy(out).trim_end().to_string())
            .into_iter()
            .filter(|out| !out.is_empty())
            .map(|out| out + "\n")
            .collect::<String>();
        return Err(format!("{what} failed ({}):\n{said}{hint}", output.status));
    }
    Ok(())
}

/// Runs `work` holding an exclusive lock on `target/NAME.lock`, so that test
/// binaries running at the same time prepare `NAME` one after the other, and
/// the later ones find it done.
pub(crate) fn locked<T>(name: &str, work: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    let target = crate::target();
    fs::create_dir_all(&target).map_err(|e| failed("create", &target, e))?;
    let path = target.join(format!("{name}.lock"));
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| failed("open", &path, e))?;
    file.lock().map_err(|e| failed("lock", &path, e))?;
    // Dropping `file` afterwards releases the lock.
    work()
}

/// The newest modification time of `path`, or of any file below it.
pub(crate) fn newest(path: &Path) -> Result<SystemTime, String> {
    let meta = fs::metadata(path).map_err(|e| failed("read", path, e))?;
    let mut time = meta.modified().map_err(|e| failed("date", path, e))?;
    if meta.is_dir() {
        for entry in fs::read_dir(path).map_err(|e| failed("read", path, e))? {
            let entry = entry.map_err(|e| failed("read", path, e))?;
            time = time.max(newest(&entry.path())?);
        }
    }
    Ok(time)
}

/// The message of a file operation `verb` that failed on `path`.
pub(crate) fn failed(verb: &str, path: &Path, error: impl Display) -> String {
    format!("cannot {verb} {}: {error}", path.display())
}
