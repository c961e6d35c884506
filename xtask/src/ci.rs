//! `cargo xtask ci`: what CI runs, one line per stage and a total.

use std::time::Instant;

use anyhow::{bail, Result};
use xshell::Shell;

use crate::{cli::CiArgs, gha, plan::Cmd};

/// Runs `cargo xtask ci`.
pub fn run(sh: &Shell, args: &CiArgs) -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut stages: Vec<(&str, Cmd)> = vec![
        ("format", Cmd::new(&cargo).args(["fmt", "--all", "--", "--check"])),
        ("lints", Cmd::new(&cargo).args(["clippy", "--workspace", "--all-targets", "--locked", "--", "-D", "warnings"])),
        ("tests", Cmd::new(&cargo).args(["test", "--workspace", "--locked"])),
    ];
    let _ = args.no_docker;
    let started = Instant::now();
    let mut results = Vec::new();
    for (name, cmd) in stages.drain(..) {
        gha::group(name);
        let t = Instant::now();
        let r = cmd.run(sh);
        gha::end_group();
        results.push((name, r.is_ok(), t.elapsed().as_secs_f64()));
        if let Err(e) = r {
            print_results(&results, started);
            bail!("ci: stage `{name}` failed: {e:#}");
        }
    }
    print_results(&results, started);
    Ok(())
}

fn print_results(results: &[(&str, bool, f64)], started: Instant) {
    for (name, ok, secs) in results {
        println!("ci: {:<8} {} ({secs:.0}s)", name, if *ok { "ok" } else { "FAILED" });
    }
    println!("ci: total {:.0}s", started.elapsed().as_secs_f64());
}
