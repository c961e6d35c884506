# Local substitute for distroless `cc` (nonroot), made from Debian's archive
# when no container registry can be reached (`cargo xtask base-images`):
# glibc, libgcc, CA certificates, /etc/passwd with root and nonroot (65532),
# no shell, no package manager. Built for every target platform at once; the
# packages are unpacked on the build platform, so nothing runs emulated.
ARG DEBIAN_IMAGE
FROM --platform=$BUILDPLATFORM ${DEBIAN_IMAGE} AS assemble
ARG TARGETARCH
RUN set -eu; \
    dpkg --add-architecture "$TARGETARCH"; apt-get update; \
    mkdir -p /debs /rootfs; cd /debs; \
    apt-get download "libc6:$TARGETARCH" "libgcc-s1:$TARGETARCH" ca-certificates; \
    for d in *.deb; do dpkg-deb -x "$d" /rootfs; done; \
    cd /rootfs; \
    mkdir -p etc/ssl/certs tmp home/nonroot root; chmod 1777 tmp; chmod 700 root; \
    cat usr/share/ca-certificates/mozilla/*.crt > etc/ssl/certs/ca-certificates.crt; \
    rm -rf usr/share/ca-certificates usr/sbin usr/bin usr/share/doc usr/share/man usr/share/lintian \
           usr/share/locale usr/share/i18n usr/lib/*/gconv usr/libexec etc/ld.so.conf.d var; \
    ln -s usr/lib lib; if [ -d usr/lib64 ]; then ln -s usr/lib64 lib64; fi; \
    printf 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' > etc/passwd; \
    printf 'root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n' > etc/group; \
    printf 'hosts: files dns\n' > etc/nsswitch.conf; \
    chown 65532:65532 home/nonroot; \
    ls -la /rootfs /rootfs/usr/lib

FROM scratch
COPY --from=assemble /rootfs/ /
USER 65532:65532
WORKDIR /home/nonroot
