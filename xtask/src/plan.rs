//! The plan layer: every external command is first a value that can be
//! printed (`--dry-run` prints exactly it), then run through xshell.

use std::{
    fmt,
    io::{BufRead, BufReader, Write},
    path::PathBuf,
    process::Stdio,
};

use anyhow::{bail, Context, Result};
use xshell::{cmd, Shell};

/// An external command as a value: program, arguments, extra environment,
/// working directory and optional standard input.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cmd {
    /// Program name looked up on `PATH`, or a path.
    pub program: String,
    /// Arguments, in order.
    pub args: Vec<String>,
    /// Extra environment variables, `(name, value)`.
    pub env: Vec<(String, String)>,
    /// Working directory; `None` is the shell's (the workspace root).
    pub dir: Option<PathBuf>,
    /// Bytes fed to standard input, never printed (e.g. `--password-stdin`).
    pub stdin: Option<Vec<u8>>,
}

impl Cmd {
    /// A command running `program` with no arguments yet.
    pub fn new(program: impl Into<String>) -> Cmd {
        Cmd {
            program: program.into(),
            ..Cmd::default()
        }
    }

    /// Appends one argument.
    pub fn arg(mut self, a: impl Into<String>) -> Cmd {
        self.args.push(a.into());
        self
    }

    /// Appends several arguments.
    pub fn args<I, S>(mut self, args: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Appends `flag value` as two arguments.
    pub fn opt(self, flag: &str, value: impl Into<String>) -> Cmd {
        self.arg(flag).arg(value)
    }

    /// Sets an environment variable, printed as `KEY=value`.
    pub fn env(mut self, key: &str, value: impl Into<String>) -> Cmd {
        self.env.push((key.to_owned(), value.into()));
        self
    }

    /// Runs in `dir` instead of the workspace root.
    pub fn dir(mut self, dir: impl Into<PathBuf>) -> Cmd {
        self.dir = Some(dir.into());
        self
    }

    /// Feeds `bytes` to standard input (never printed).
    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Cmd {
        self.stdin = Some(bytes.into());
        self
    }

    fn to_xshell<'a>(&self, sh: &'a Shell) -> xshell::Cmd<'a> {
        let program = &self.program;
        let args = &self.args;
        let mut c = cmd!(sh, "{program} {args...}").quiet();
        for (k, v) in &self.env {
            c = c.env(k, v);
        }
        if let Some(bytes) = &self.stdin {
            c = c.stdin(bytes);
        }
        c
    }

    /// The command as a `std::process::Command` built through xshell, with
    /// its environment and working directory: for callers that need to
    /// spawn it themselves (detached services).
    pub fn to_process(&self, sh: &Shell) -> std::process::Command {
        let mut c: std::process::Command = self.to_xshell(sh).into();
        if let Some(dir) = &self.dir {
            c.current_dir(sh.current_dir().join(dir));
        }
        c
    }

    /// Prints `+ <command>` to stderr, the echo before every run.
    pub fn echo(&self) {
        eprintln!("+ {self}");
    }

    /// Echoes, then runs with inherited output; a non-zero exit is an error
    /// naming the command.
    pub fn run(&self, sh: &Shell) -> Result<()> {
        self.echo();
        let status = self
            .spawn_with_stdin(sh, Stdio::inherit(), Stdio::inherit())?
            .wait()?;
        if !status.success() {
            bail!("`{}` failed with {status}", self.short());
        }
        Ok(())
    }

    /// Echoes, runs, and returns stdout (trimmed); stderr passes through.
    pub fn read(&self, sh: &Shell) -> Result<String> {
        self.echo();
        self.read_quiet(sh)
    }

    /// Runs without echo and returns stdout (trimmed): for probes whose
    /// command line is noise (doctor's checks).
    pub fn read_quiet(&self, sh: &Shell) -> Result<String> {
        let out = self.capture(sh)?;
        if !out.ok {
            bail!("`{}` failed: {}", self.short(), out.stderr.trim());
        }
        Ok(out.stdout.trim().to_owned())
    }

    /// Runs without echo, capturing stdout and stderr; never fails on a
    /// non-zero exit (see [`Captured::ok`]); fails only when it cannot start.
    pub fn capture(&self, sh: &Shell) -> Result<Captured> {
        let mut child = self.spawn_with_stdin(sh, Stdio::piped(), Stdio::piped())?;
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let err_thread = std::thread::spawn(move || {
            let mut s = String::new();
            if let Some(mut e) = stderr {
                let _ = std::io::Read::read_to_string(&mut e, &mut s);
            }
            s
        });
        let mut out = String::new();
        if let Some(mut o) = stdout {
            std::io::Read::read_to_string(&mut o, &mut out)?;
        }
        let status = child.wait()?;
        let err = err_thread.join().unwrap_or_default();
        Ok(Captured {
            ok: status.success(),
            stdout: out,
            stderr: err,
        })
    }

    /// Echoes, runs with stdout inherited and stderr both shown live and
    /// kept: for long builds whose errors are diagnosed afterwards.
    pub fn run_teed(&self, sh: &Shell) -> Result<Captured> {
        self.echo();
        let mut child = self.spawn_with_stdin(sh, Stdio::inherit(), Stdio::piped())?;
        let mut kept = String::new();
        if let Some(err) = child.stderr.take() {
            let mut lines = BufReader::new(err);
            let mut line = String::new();
            let stderr = std::io::stderr();
            while lines.read_line(&mut line)? > 0 {
                let _ = stderr.lock().write_all(line.as_bytes());
                kept.push_str(&line);
                line.clear();
            }
        }
        let status = child.wait()?;
        Ok(Captured {
            ok: status.success(),
            stdout: String::new(),
            stderr: kept,
        })
    }

    fn spawn_with_stdin(
        &self,
        sh: &Shell,
        stdout: Stdio,
        stderr: Stdio,
    ) -> Result<std::process::Child> {
        let mut p = self.to_process(sh);
        p.stdout(stdout).stderr(stderr);
        p.stdin(if self.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        let mut child = p.spawn().with_context(|| {
            format!(
                "cannot start `{}` (is it installed and on PATH?)",
                self.program
            )
        })?;
        if let (Some(bytes), Some(mut input)) = (&self.stdin, child.stdin.take()) {
            input
                .write_all(bytes)
                .context("writing to standard input")?;
        }
        Ok(child)
    }

    /// `program first-arg second-arg`: a short name for error messages.
    pub fn short(&self) -> String {
        let mut s = self.program.clone();
        for a in self.args.iter().take(2) {
            s.push(' ');
            s.push_str(a);
        }
        s
    }
}

/// What a captured run gave.
#[derive(Clone, Debug, Default)]
pub struct Captured {
    /// Whether the exit status was 0.
    pub ok: bool,
    /// Standard output (empty for teed runs, where it went to the terminal).
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

/// Quotes a word for a POSIX shell only when it needs it, so a printed
/// command can be pasted back into a shell.
pub fn shell_quote(s: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "-_./:=,@%+^".contains(c);
    if !s.is_empty() && s.chars().all(safe) {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

impl fmt::Display for Cmd {
    /// `[cd DIR &&] [KEY=value ...] program args... [< ***]`, shell-quoted;
    /// standard input (passwords for `--password-stdin`) is never printed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(dir) = &self.dir {
            write!(f, "cd {} && ", shell_quote(&dir.display().to_string()))?;
        }
        for (k, v) in &self.env {
            write!(f, "{k}={} ", shell_quote(v))?;
        }
        f.write_str(&shell_quote(&self.program))?;
        for a in &self.args {
            write!(f, " {}", shell_quote(a))?;
        }
        if self.stdin.is_some() {
            f.write_str(" < ***")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_quotes_and_hides_secrets() {
        let c = Cmd::new("docker")
            .args(["login", "ghcr.io", "--username", "me"])
            .arg("--password-stdin")
            .stdin("hunter2")
            .env("A", "x y")
            .arg("it's")
            .arg("");
        let shown = c.to_string();
        assert_eq!(
            shown,
            "A='x y' docker login ghcr.io --username me --password-stdin 'it'\\''s' '' < ***"
        );
        assert!(!shown.contains("hunter2"));
    }

    #[test]
    fn plain_words_stay_unquoted() {
        let c = Cmd::new("docker").args([
            "buildx",
            "--platform=linux/arm64",
            "type=local,dest=/tmp/x,mode=max",
            "localhost:5000/brokkr-broker:sha-abc1234-arm64",
        ]);
        assert_eq!(
            c.to_string(),
            "docker buildx --platform=linux/arm64 type=local,dest=/tmp/x,mode=max localhost:5000/brokkr-broker:sha-abc1234-arm64"
        );
    }

    #[test]
    fn runs_and_captures() -> Result<()> {
        let sh = Shell::new()?;
        let out = Cmd::new("sh")
            .args(["-c", "cat; echo err >&2; exit 3"])
            .stdin("in")
            .capture(&sh)?;
        assert!(!out.ok);
        assert_eq!(out.stdout, "in");
        assert_eq!(out.stderr, "err\n");
        Ok(())
    }
}
