# syntax=docker/dockerfile:1
#
# pullgate container image: `docker build -t ghcr.io/pullgate/pullgate:0.1.0 .`
# (the tag that manifests/base/kustomization.yaml deploys).

# --- build ---------------------------------------------------------------------------
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
# The target directory is a cache mount, so the binary is copied out in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin pullgate \
 && install -D -m 0755 target/release/pullgate /out/pullgate

# --- runtime -------------------------------------------------------------------------
# distroless "cc": the binary is built for the default x86_64/aarch64-unknown-linux-gnu
# target and so links glibc (and libgcc_s); "static" has no libc and would need a musl
# build. Both images are Debian 12, the same glibc as the bookworm builder. No shell, no
# package manager; ":nonroot" runs as uid/gid 65532.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/pullgate /pullgate
USER 65532:65532
# 8443: admission over TLS; 9090: /healthz, /readyz, /metrics (plain HTTP).
EXPOSE 8443 9090
ENTRYPOINT ["/pullgate"]
CMD ["serve"]
