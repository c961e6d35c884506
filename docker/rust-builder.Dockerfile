# Local substitute for the upstream Rust builder image, made from Debian's
# archive when no container registry can be reached (`cargo xtask base-images`).
# It runs on the build platform and holds Debian's rustc and cargo, the
# standard library and C cross compiler for every target platform, and
# cargo-chef. xtask passes every argument; see xtask/src/base_images.rs.
#
# cargo-chef comes from CARGO_CHEF_FROM: `host` copies the binary xtask
# compiled with the host's cargo while debootstrap ran (the named build context
# `host-cargo-chef`; xtask builds the `toolchain` stage meanwhile, into the build
# cache); `compiled` (without host cargo) compiles it in a stage
# that runs beside the final stage's apt step (a debug build without debug info:
# a third of the release build's time, and cargo-chef only reads manifests).
ARG DEBIAN_IMAGE
ARG CARGO_CHEF_FROM=compiled

FROM scratch AS chef-host
COPY --from=host-cargo-chef cargo-chef /chef/bin/cargo-chef

FROM ${DEBIAN_IMAGE} AS chef-compiled
ARG CARGO_CHEF_VERSION
RUN set -eu; apt-get update; \
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends rustc cargo gcc libc6-dev ca-certificates
RUN --mount=type=secret,id=ca-bundle,required=false \
    set -eu; if [ -s /run/secrets/ca-bundle ]; then export CARGO_HTTP_CAINFO=/run/secrets/ca-bundle; fi; \
    CARGO_PROFILE_DEV_DEBUG=0 cargo install cargo-chef --version "$CARGO_CHEF_VERSION" --locked --debug --root /chef

FROM chef-${CARGO_CHEF_FROM} AS chef

FROM ${DEBIAN_IMAGE} AS toolchain
# Debian architectures of the other target platforms (`dpkg --add-architecture`).
ARG FOREIGN_ARCHES
# Debian packages to install (rustc, cargo, gcc, cross compilers, libstd-rust-dev:<arch>).
ARG PACKAGES
ENV CARGO_HOME=/usr/local/cargo \
    PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
RUN set -eu; for a in $FOREIGN_ARCHES; do dpkg --add-architecture "$a"; done; \
    apt-get update; \
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $PACKAGES; \
    rm -rf /var/lib/apt/lists/*

FROM toolchain
COPY --from=chef /chef/bin/cargo-chef /usr/local/cargo/bin/cargo-chef
RUN cargo chef --version
