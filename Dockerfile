# syntax=docker/dockerfile:1
# The `mooring` binary (controller, speaker, standalone, announce, ...) in a
# distroless image running as uid 65532 (nonroot).
#
#   docker build -t registry.example.com/mooring:0.1.0 .
#
# The Helm chart (helm/mooring) runs `mooring controller` and
# `mooring speaker` from this image.

FROM rust:1-bookworm AS builder
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
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=builder /out/mooring /usr/local/bin/mooring
USER 65532:65532
# 9472: controller metrics, 9473: speaker metrics (both /metrics, /healthz, /readyz).
EXPOSE 9472 9473
ENTRYPOINT ["/usr/local/bin/mooring"]
CMD ["--help"]
