//! Build script of both services (`agent/Cargo.toml` points here too).
//!
//! Bakes in what the binary is compiled FOR, not the build host, for `--version`
//! (and the broker's `/version`): `BROKKR_TARGET` is Cargo's `TARGET` triple,
//! `BROKKR_ARCH` its `CARGO_CFG_TARGET_ARCH` (`x86_64`, `aarch64`). The crates read
//! optional `BROKKR_GIT_COMMIT` themselves (`option_env!`); the rerun line rebuilds
//! when it changes.
fn main() {
    for (key, from) in [("BROKKR_TARGET", "TARGET"), ("BROKKR_ARCH", "CARGO_CFG_TARGET_ARCH")] {
        println!("cargo:rustc-env={key}={}", std::env::var(from).expect(from));
    }
    println!("cargo:rerun-if-env-changed=BROKKR_GIT_COMMIT");
}
