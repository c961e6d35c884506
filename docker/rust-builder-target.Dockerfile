# Local substitute for the upstream Rust image ON THE TARGET PLATFORM, for
# `--strategy emulate` when no registry can be reached (`cargo xtask
# base-images --emulate`). Debian's rustc, cargo and gcc for the target
# architecture, and cargo-chef cross-compiled for it on the build platform.
# The packages are unpacked on the build platform (debootstrap --foreign);
# only their configuration (debootstrap's second stage) runs emulated.
# xtask passes every argument; see xtask/src/base_images.rs.
ARG DEBIAN_IMAGE
ARG BUILDER_IMAGE

FROM --platform=$BUILDPLATFORM ${DEBIAN_IMAGE} AS rootfs
ARG TARGETARCH
ARG DEBIAN_SUITE
ARG DEBIAN_MIRROR
RUN set -eu; apt-get update; \
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends debootstrap; \
    debootstrap --foreign --arch="$TARGETARCH" --variant=minbase \
      --include=rustc,cargo,gcc,libc6-dev,ca-certificates "$DEBIAN_SUITE" /rootfs "$DEBIAN_MIRROR"; \
    rm -rf /rootfs/proc /rootfs/sys /rootfs/dev; mkdir -p /rootfs/proc /rootfs/sys /rootfs/dev

FROM --platform=$BUILDPLATFORM ${BUILDER_IMAGE} AS chef
ARG TARGETARCH
ARG CARGO_CHEF_VERSION
COPY cargo-env.sh /usr/local/share/brokkr/cargo-env.sh
RUN --mount=type=secret,id=ca-bundle,required=false \
    . /usr/local/share/brokkr/cargo-env.sh \
    && cargo install cargo-chef --version "$CARGO_CHEF_VERSION" --locked --target "$RUST_TARGET" --root /chef

FROM scratch
COPY --from=rootfs /rootfs/ /
RUN /debootstrap/debootstrap --second-stage && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb
COPY --from=chef /chef/bin/cargo-chef /usr/local/cargo/bin/cargo-chef
ENV CARGO_HOME=/usr/local/cargo \
    PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
