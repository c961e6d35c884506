# Local substitute for the upstream Rust builder image, made from Debian's
# archive when no container registry can be reached (`cargo xtask base-images`).
# It runs on the build platform and holds Debian's rustc and cargo, the
# standard library and C cross compiler for every target platform, and
# cargo-chef. xtask passes every argument; see xtask/src/base_images.rs.
ARG DEBIAN_IMAGE
FROM ${DEBIAN_IMAGE}
# Debian architectures of the other target platforms (`dpkg --add-architecture`).
ARG FOREIGN_ARCHES
# Debian packages to install (rustc, cargo, gcc, cross compilers, libstd-rust-dev:<arch>).
ARG PACKAGES
ARG CARGO_CHEF_VERSION
ENV CARGO_HOME=/usr/local/cargo \
    PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
RUN set -eu; for a in $FOREIGN_ARCHES; do dpkg --add-architecture "$a"; done; \
    apt-get update; \
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $PACKAGES; \
    rm -rf /var/lib/apt/lists/*
RUN --mount=type=secret,id=ca-bundle,required=false \
    set -eu; if [ -s /run/secrets/ca-bundle ]; then export CARGO_HTTP_CAINFO=/run/secrets/ca-bundle; fi; \
    cargo install cargo-chef --version "$CARGO_CHEF_VERSION" --locked; \
    rm -rf "$CARGO_HOME/registry" "$CARGO_HOME/git"; \
    cargo chef --version
