# syntax=docker/dockerfile:1
# The `mooring` binary (controller, speaker, standalone, status, ...) in a
# distroless image running as uid 65532 (nonroot), with no capability: the
# Helm chart (helm/mooring) drops ALL and adds NET_BIND_SERVICE only when the
# speaker listens on a port below 1024.
#
#   docker build -t registry.example.com/mooring:0.1.0 .
#
# The base images are build arguments (both are multi-arch, so
# `docker buildx build --platform linux/amd64,linux/arm64` builds for both;
# see docs/install.md). The image test (integration/tests/image.rs) builds
# this file offline with podman from a debootstrap'ed Debian 12 base.
ARG RUST_IMAGE=docker.io/library/rust:1-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot

FROM ${RUST_IMAGE} AS builder
WORKDIR /src
COPY . .
# Release build without the debug info the workspace's release profile keeps
# (symbols stay, for readable backtraces).
ENV CARGO_PROFILE_RELEASE_DEBUG=0 \
    CARGO_PROFILE_RELEASE_STRIP=debuginfo
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p mooring-agent --bin mooring \
    && install -D -m 0755 target/release/mooring /out/mooring

# glibc + libgcc only (kube uses rustls/ring: no OpenSSL).
FROM ${RUNTIME_IMAGE}
COPY --from=builder /out/mooring /usr/local/bin/mooring
USER 65532:65532
# 9472: controller metrics, 9473: speaker metrics (both /metrics, /healthz,
# /readyz); the admin endpoint `mooring status` reads listens on 127.0.0.1.
EXPOSE 9472 9473
ENTRYPOINT ["/usr/local/bin/mooring"]
CMD ["--help"]
