//! Every external command is first a [`Cmd`] value that can be printed
//! (`--dry-run` prints exactly it), then run: inherited output, captured, or teed.

use std::{
    fmt,
    io::{BufRead, BufReader, Write},
    path::PathBuf,
    process::Stdio,
};

use anyhow::{ensure, Context, Result};
use xshell::Shell;

/// An external command. `dir`: relative to the shell's (the workspace root);
/// `stdin` is never printed (e.g. for `--password-stdin`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cmd {
    pub program: String,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub dir: Option<PathBuf>,
    pub stdin: Option<Vec<u8>>,
}

/// What a captured run gave (`stdout` is empty for teed runs).
#[derive(Clone, Debug, Default)]
pub struct Captured {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Cmd {
    pub fn new(program: impl Into<String>) -> Cmd {
        Cmd { program: program.into(), ..Cmd::default() }
    }

    pub fn arg(self, a: impl Into<String>) -> Cmd {
        self.args([a])
    }

    pub fn args(mut self, args: impl IntoIterator<Item = impl Into<String>>) -> Cmd {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    pub fn opt(self, flag: &str, value: impl Into<String>) -> Cmd {
        self.arg(flag).arg(value)
    }

    /// `flag value` for each value (none for `None`).
    pub fn opts(self, flag: &str, values: impl IntoIterator<Item = impl Into<String>>) -> Cmd {
        values.into_iter().fold(self, |c, v| c.opt(flag, v))
    }

    pub fn env(mut self, key: &str, value: impl Into<String>) -> Cmd {
        self.env.push((key.to_owned(), value.into()));
        self
    }

    pub fn dir(mut self, dir: impl Into<PathBuf>) -> Cmd {
        self.dir = Some(dir.into());
        self
    }

    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Cmd {
        self.stdin = Some(bytes.into());
        self
    }

    /// For callers that spawn it themselves (detached services).
    pub fn to_process(&self, sh: &Shell) -> std::process::Command {
        let mut c = std::process::Command::new(&self.program);
        c.args(&self.args).envs(self.env.iter().map(|(k, v)| (k, v)));
        c.current_dir(self.dir.as_ref().map_or(sh.current_dir(), |d| sh.current_dir().join(d)));
        c
    }

    /// `+ <command>` on stderr, before every run.
    pub fn echo(&self) {
        eprintln!("+ {self}");
    }

    /// Echoes, then runs with inherited output; a non-zero exit is an error.
    pub fn run(&self, sh: &Shell) -> Result<()> {
        self.echo();
        let status = self.spawn(sh, Stdio::inherit(), Stdio::inherit())?.wait()?;
        ensure!(status.success(), "`{}` failed with {status}", self.short());
        Ok(())
    }

    /// [`Cmd::read_quiet`] after an echo.
    pub fn read(&self, sh: &Shell) -> Result<String> {
        self.echo();
        self.read_quiet(sh)
    }

    /// Runs without echo; stdout (trimmed), or an error quoting stderr.
    pub fn read_quiet(&self, sh: &Shell) -> Result<String> {
        let out = self.capture(sh)?;
        ensure!(out.ok, "`{}` failed: {}", self.short(), out.stderr.trim());
        Ok(out.stdout.trim().to_owned())
    }

    /// Runs without echo, capturing both streams; fails only when the program cannot start.
    pub fn capture(&self, sh: &Shell) -> Result<Captured> {
        let out = self.spawn(sh, Stdio::piped(), Stdio::piped())?.wait_with_output()?;
        let t = |b: Vec<u8>| String::from_utf8_lossy(&b).into_owned();
        Ok(Captured { ok: out.status.success(), stdout: t(out.stdout), stderr: t(out.stderr) })
    }

    /// Echoes, runs with stdout inherited and stderr shown live and kept:
    /// for long builds whose errors are diagnosed afterwards.
    pub fn run_teed(&self, sh: &Shell) -> Result<Captured> {
        self.echo();
        let mut child = self.spawn(sh, Stdio::inherit(), Stdio::piped())?;
        let mut stderr = String::new();
        for line in BufReader::new(child.stderr.take().context("no stderr")?).split(b'\n') {
            let line = String::from_utf8_lossy(&line?).into_owned() + "\n";
            let _ = std::io::stderr().write_all(line.as_bytes());
            stderr.push_str(&line);
        }
        Ok(Captured { ok: child.wait()?.success(), stdout: String::new(), stderr })
    }

    fn spawn(&self, sh: &Shell, stdout: Stdio, stderr: Stdio) -> Result<std::process::Child> {
        let mut p = self.to_process(sh);
        p.stdout(stdout).stderr(stderr);
        p.stdin(if self.stdin.is_some() { Stdio::piped() } else { Stdio::null() });
        let mut child = p.spawn().with_context(|| {
            format!("cannot start `{}` (is it installed and on PATH?)", self.program)
        })?;
        if let (Some(bytes), Some(mut input)) = (&self.stdin, child.stdin.take()) {
            input.write_all(bytes).context("writing to standard input")?;
        }
        Ok(child)
    }

    /// `program arg1 arg2`, for error messages.
    pub fn short(&self) -> String {
        let mut words = vec![self.program.as_str()];
        words.extend(self.args.iter().take(2).map(String::as_str));
        words.join(" ")
    }
}

/// Quotes a word for a POSIX shell when needed, so a printed command can be pasted back.
pub fn shell_quote(s: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "-_./:=,@%+^".contains(c);
    if !s.is_empty() && s.chars().all(safe) {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

impl fmt::Display for Cmd {
    /// `[cd DIR &&] [KEY=value ...] program args... [< ***]`, shell-quoted.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(dir) = &self.dir {
            write!(f, "cd {} && ", shell_quote(&dir.display().to_string()))?;
        }
        for (k, v) in &self.env {
            write!(f, "{k}={} ", shell_quote(v))?;
        }
        let words: Vec<String> =
            [&self.program].into_iter().chain(&self.args).map(|w| shell_quote(w)).collect();
        f.write_str(&words.join(" "))?;
        f.write_str(if self.stdin.is_some() { " < ***" } else { "" })
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
        let out =
            Cmd::new("sh").args(["-c", "cat; echo err >&2; exit 3"]).stdin("in").capture(&sh)?;
        assert!(!out.ok);
        assert_eq!(out.stdout, "in");
        assert_eq!(out.stderr, "err\n");
        Ok(())
    }
}
