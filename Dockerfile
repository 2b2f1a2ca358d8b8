# syntax=docker/dockerfile:1
# The workshop's two services, one target each:
#   docker build --target apiserver   -t apiserver:dev .
#   docker build --target todomanager -t todomanager:dev .
# `cargo xtask up` builds both with the crate version and a content hash as tag.
# Base images are build arguments, so that a mirror can stand in for Docker Hub.
ARG RUST_IMAGE=docker.io/library/rust:1.95-slim-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot

# cargo-chef splits the build: dependencies first (a layer that stays cached while only our
# code changes), then the workspace itself.
FROM ${RUST_IMAGE} AS chef
RUN cargo install cargo-chef --locked --version 0.1.78
WORKDIR /src

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
COPY --from=planner /src/recipe.json recipe.json
RUN cargo chef cook --release --locked --recipe-path recipe.json --package apiserver --package todomanager
COPY Cargo.toml Cargo.lock ./
COPY .cargo .cargo
COPY services services
COPY xtask xtask
RUN cargo build --release --locked --package apiserver --package todomanager

# Distroless: no shell, no package manager; runs as the unprivileged user 65532.
FROM ${RUNTIME_IMAGE} AS apiserver
ARG VERSION=dev
LABEL org.opencontainers.image.title="apiserver" \
      org.opencontainers.image.description="Traces of Your Microservices: the todo REST API" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=builder /src/target/release/apiserver /usr/local/bin/apiserver
USER 65532:65532
EXPOSE 8080 8081
ENTRYPOINT ["/usr/local/bin/apiserver"]

FROM ${RUNTIME_IMAGE} AS todomanager
ARG VERSION=dev
LABEL org.opencontainers.image.title="todomanager" \
      org.opencontainers.image.description="Traces of Your Microservices: the todo gRPC service" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=builder /src/target/release/todomanager /usr/local/bin/todomanager
USER 65532:65532
EXPOSE 8090 8091
ENTRYPOINT ["/usr/local/bin/todomanager"]
