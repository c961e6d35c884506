//! Background services started by xtask (dockerd, the loopback registry):
//! spawned detached so they outlive it, then found again through `/proc`.

use std::{
    fs::OpenOptions,
    path::Path,
    process::{Child, Stdio},
};

use anyhow::{Context, Result};
use xshell::Shell;

use super::tail;
use crate::plan::Cmd;

/// Starts `cmd` (normally `setsid PROGRAM ...`, so it leaves xtask's session
/// and survives it) with stdin from `/dev/null` and stdout and stderr
/// appended to `log`. Not waited for: the caller polls the service and may
/// use [`Child::try_wait`] to notice an early exit. Because the spawned
/// process is never a process-group leader, setsid(1) does not fork: the
/// child's pid is the service's pid.
pub fn spawn_detached(sh: &Shell, cmd: &Cmd, log: &Path) -> Result<Child> {
    if let Some(dir) = log.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let out = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("opening log {}", log.display()))?;
    let err = out.try_clone()?;
    let mut c = cmd.to_process(sh);
    c.stdin(Stdio::null()).stdout(out).stderr(err);
    eprintln!("+ {cmd} >> {} 2>&1 < /dev/null &", log.display());
    c.spawn().with_context(|| {
        format!(
            "cannot start `{}` (is it installed and on PATH?)",
            cmd.program
        )
    })
}

/// The state letter of `/proc/<pid>/stat` (proc(5): the field after the
/// parenthesised command name; `Z` is a zombie).
pub fn proc_state(stat: &str) -> Option<char> {
    let after = &stat[stat.rfind(')')? + 1..];
    after.trim_start().chars().next()
}

/// Whether `pid` is a live (not zombie) process.
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| proc_state(&s))
        .is_some_and(|c| c != 'Z' && c != 'X')
}

/// `/proc/<pid>/cmdline` with NULs as spaces; empty when unreadable.
pub fn cmdline(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            String::from_utf8_lossy(&b)
                .replace('\0', " ")
                .trim()
                .to_owned()
        })
        .unwrap_or_default()
}

/// The last `n` lines of a log file, or a note that it cannot be read.
pub fn log_tail(path: &Path, n: usize) -> String {
    match std::fs::read(path) {
        Ok(b) => tail(&String::from_utf8_lossy(&b), n),
        Err(e) => format!("(cannot read {}: {e})", path.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_proc_state() {
        let cases: &[(&str, Option<char>)] = &[
            ("2763 (dockerd) S 1 2763 2763 0 -1 4194560 ...", Some('S')),
            ("42 (docker-registry) R 1 42", Some('R')),
            ("7 (a (weird) name) Z 1 7", Some('Z')),
            ("garbage", None),
        ];
        for (stat, want) in cases {
            assert_eq!(proc_state(stat), *want, "{stat}");
        }
        assert!(alive(std::process::id()));
        assert!(cmdline(std::process::id()).contains("xtask"));
    }
}
