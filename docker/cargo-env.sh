# Sourced (`. /usr/local/share/brokkr/cargo-env.sh`) by every cargo step of
# Dockerfile.broker and Dockerfile.agent. It
# - maps Docker's TARGETARCH to the Rust target triple in RUST_TARGET (the
#   same table as xtask/src/project.rs; `cargo xtask ci` checks they agree);
# - points cargo and cc-rs at the C compiler/linker for that triple
#   (CARGO_TARGET_<TRIPLE>_LINKER, CC_<triple>) and fails before cargo runs
#   when it is missing (cases B8/B9: no "Relocations in generic ELF");
# - trusts an extra CA bundle passed as the build secret `ca-bundle`
#   (TLS-intercepting proxies); it is never copied into an image.
# With the argument `install` it first installs what an upstream Rust image
# lacks (target standard library, C cross compiler, cargo-chef); on the
# local builder from `cargo xtask base-images` everything is already there.

case "${TARGETARCH:-}" in
  amd64) RUST_TARGET=x86_64-unknown-linux-gnu; brokkr_gnu=x86_64-linux-gnu ;;
  arm64) RUST_TARGET=aarch64-unknown-linux-gnu; brokkr_gnu=aarch64-linux-gnu ;;
  *) echo "brokkr: unsupported TARGETARCH '${TARGETARCH:-}' (supported: amd64, arm64)" >&2; return 1 ;;
esac
export RUST_TARGET
export CARGO_HOME=/usr/local/cargo CARGO_TERM_COLOR=never CARGO_REGISTRIES_CRATES_IO_PROTOCOL=sparse
export PATH="/usr/local/cargo/bin:$PATH"
if [ -s /run/secrets/ca-bundle ]; then
  export CARGO_HTTP_CAINFO=/run/secrets/ca-bundle SSL_CERT_FILE=/run/secrets/ca-bundle
fi
brokkr_cc="$brokkr_gnu-gcc"

if [ "${1:-}" = install ]; then
  if command -v rustup >/dev/null 2>&1; then
    rustup target add "$RUST_TARGET" || return 1
  fi
  if ! command -v "$brokkr_cc" >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
    apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      "gcc-$(echo "$brokkr_gnu" | tr _ -)" "libc6-dev-$TARGETARCH-cross" \
      && rm -rf /var/lib/apt/lists/* || return 1
  fi
  if ! command -v cargo-chef >/dev/null 2>&1; then
    cargo install cargo-chef --version "${CARGO_CHEF_VERSION:-0.1.75}" --locked \
      && rm -rf "$CARGO_HOME/registry" "$CARGO_HOME/git" || return 1
  fi
fi

if ! command -v "$brokkr_cc" >/dev/null 2>&1; then
  echo "brokkr: the C compiler and linker for $RUST_TARGET, $brokkr_cc, is not installed in this builder image;" \
    "install Debian's gcc-$(echo "$brokkr_gnu" | tr _ -) and libc6-dev-$TARGETARCH-cross, or use the builder from 'cargo xtask base-images'" >&2
  return 1
fi
if [ ! -d "$(rustc --print sysroot)/lib/rustlib/$RUST_TARGET/lib" ]; then
  echo "brokkr: rustc in this builder image has no standard library for $RUST_TARGET;" \
    "add it (rustup target add $RUST_TARGET, or Debian's libstd-rust-dev:$TARGETARCH)" >&2
  return 1
fi
brokkr_upper=$(echo "$RUST_TARGET" | tr 'a-z-' 'A-Z_')
export "CARGO_TARGET_${brokkr_upper}_LINKER=$brokkr_cc" "CC_$(echo "$RUST_TARGET" | tr - _)=$brokkr_cc"

# The `build` stage's target directory is a cache mount that outlives builds.
# brokkr_seed_target COOKED: when the cook layer was rebuilt (its marker
# differs), start over from its target directory; otherwise date every file
# whose content changed since the last build (mtimes can go backwards between
# checkouts, and cargo rebuilds a crate only when a source is newer than its output).
brokkr_seed_target() {
  if ! cmp -s "$1/.brokkr-cook" target/.brokkr-cook; then
    find target -mindepth 1 -delete && cp -a "$1/." target/ || return 1
  elif [ -f target/.brokkr-sources ]; then
    sha256sum -c --quiet target/.brokkr-sources 2>/dev/null | sed -n 's/: FAILED$//p' |
      while IFS= read -r brokkr_f; do touch -- "$brokkr_f"; done
  fi
}
# brokkr_record_sources: the content of every source file, for the next build's check.
brokkr_record_sources() {
  find . -path ./target -prune -o -type f -print0 | sort -z | xargs -0 sha256sum > target/.brokkr-sources
}
