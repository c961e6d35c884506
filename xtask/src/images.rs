//! `cargo xtask images`: every component (or those given) for the given
//! platforms, loaded into the local engine or pushed under per-platform
//! references, ending with a table.

use anyhow::Result;
use xshell::Shell;

use crate::{build_image, buildx::Output, cli::ImagesArgs};

/// Runs `cargo xtask images`.
pub fn run(sh: &Shell, args: &ImagesArgs) -> Result<()> {
    let platforms = args.select.platforms()?;
    let components = args.select.components();
    let output = if args.push {
        Output::Push
    } else {
        Output::Load
    };
    let prepared = build_image::prepare(sh, &args.build, &platforms)?;
    let mut records = Vec::new();
    for c in &components {
        for p in &platforms {
            records.push(build_image::build(
                sh,
                &prepared,
                &args.build,
                c,
                &[p],
                output,
                &[],
            )?);
        }
    }
    if !args.build.dry_run {
        build_image::print_table(&records)?;
    }
    Ok(())
}
