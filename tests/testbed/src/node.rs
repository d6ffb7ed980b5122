//! The Node `ws` test peer (`tests/peers/node/peer.js`): `npm install` of
//! `tests/peers/node/package-lock.json` into `target/node-peers`.

use std::fs;
use std::path::PathBuf;
use std::process::Command;

use crate::steps::{failed, locked, run};

/// What the Node peer needs, said when it cannot be installed.
const HINT: &str = "the Node `ws` test peer (tests/peers/node) needs node, npm and the npm \
                    registry: on Debian, apt-get install nodejs npm \
                    (if target/node-peers is broken, delete it)";

/// Installs the locked `ws` into `target/node-peers`, unless the lock file
/// is the one last installed there, and returns its `node_modules`.
pub(crate) fn peers() -> Result<PathBuf, String> {
    let dir = crate::target().join("node-peers");
    locked("node-peers", || {
        let source = crate::repo().join("tests").join("peers").join("node");
        let lock_file = source.join("package-lock.json");
        let lock = fs::read_to_string(&lock_file).map_err(|e| failed("read", &lock_file, e))?;
        let stamp = dir.join("package-lock.stamp");
        let modules = dir.join("node_modules");
        if fs::read_to_string(&stamp).is_ok_and(|installed| installed == lock) && modules.exists() {
            return Ok(modules);
        }
        fs::create_dir_all(&dir).map_err(|e| failed("create", &dir, e))?;
        for file in ["package.json", "package-lock.json"] {
            let from = source.join(file);
            fs::copy(&from, dir.join(file)).map_err(|e| failed("copy", &from, e))?;
        }
        run(
            Command::new("npm")
                .args(["install", "--no-audit", "--no-fund", "--loglevel=error"])
                .current_dir(&dir),
            "installing the Node test peer's ws (npm install of tests/peers/node/package-lock.json)",
            HINT,
        )?;
        fs::write(&stamp, lock).map_err(|e| failed("write", &stamp, e))?;
        Ok(modules)
    })
}
