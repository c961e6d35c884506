//! `cargo xtask images`: every component (or those given) for the given
//! platforms, loaded into the local engine or pushed under per-platform
//! references, ending with a table.

use anyhow::Result;
use clap::Args;
use xshell::Shell;

use crate::{
    build_image,
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

pub fn run(sh: &Shell, args: &ImagesArgs) -> Result<()> {
    let platforms = args.select.platforms()?;
    let components = args.select.components();
    let legs: Vec<_> =
        components.iter().flat_map(|c| platforms.iter().map(|p| (*c, vec![*p]))).collect();
    build_image::build_legs(sh, &args.build, &platforms, &legs, args.push, &[])
}
