//! `cargo xtask images`: every component (or those given) for the given
//! platforms, loaded into the local engine or pushed under per-platform
//! references, ending with a table.

use anyhow::Result;
use xshell::Shell;

use crate::{
    build_image,
    buildx::Output,
    cli::ImagesArgs,
    project::{ComponentList, PlatformList},
};

/// Runs `cargo xtask images`.
pub fn run(sh: &Shell, args: &ImagesArgs) -> Result<()> {
    let platforms = PlatformList::or_host(args.platform.clone())?;
    let components = ComponentList::or_all(args.component.clone());
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
