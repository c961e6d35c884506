//! `cargo xtask images`: every component (or those given) for the given
//! platforms, loaded into the local engine or pushed under per-platform
//! references, ending with a table.

use anyhow::Result;
use clap::Args;
use xshell::Shell;

use crate::{
    build_image,
    buildx::Output,
    options::{BuildOpts, Selection},
};

/// Options of `images`.
#[derive(Debug, Args)]
pub struct ImagesArgs {
    #[command(flatten)]
    pub select: Selection,
    /// Push each image under its per-platform reference instead of loading it.
    #[arg(long)]
    pub push: bool,
    #[command(flatten)]
    pub build: BuildOpts,
}

/// Runs `cargo xtask images`.
pub fn run(sh: &Shell, args: &ImagesArgs) -> Result<()> {
    let platforms = args.select.platforms()?;
    let components = args.select.components();
    let output = if args.push { Output::Push } else { Output::Load };
    let prepared = build_image::prepare(sh, &args.build, &platforms)?;
    let mut records = Vec::new();
    for c in &components {
        for p in &platforms {
            records.push(build_image::build(sh, &prepared, &args.build, c, &[p], output, &[])?);
        }
    }
    if !args.build.dry_run {
        build_image::print_table(&records);
    }
    Ok(())
}
