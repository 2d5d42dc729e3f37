# syntax=docker/dockerfile:1
#
# ragshift's worker image: the `ragshift` binary on a slim Debian, run as a non-root user. It is
# a drop-in for Bedrock Chat's embedding task image: `rebuild --executor ecs` overrides the
# container's command with `["embed-bot", "--run-id", R, "--exec-id", E, KEYS_JSON]`, and the
# ENTRYPOINT supplies `ragshift` (so `[executor] command_prefix` defaults to ["embed-bot"]).
#
#   docker build -t ragshift .
#   # with the local embedding model inside (only for [embedding] provider = "local"):
#   docker build --build-context model=$HOME/.cache/ragshift/models/all-MiniLM-L6-v2 -t ragshift .
#
# See docs/ecs.md for pushing it and running a rebuild with it.

ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm

# An empty model by default; `--build-context model=DIR` replaces this stage with a folder
# holding config.json, tokenizer.json and model.safetensors.
FROM scratch AS model

FROM rust:${RUST_VERSION}-slim-${DEBIAN_RELEASE} AS build
# C/C++ toolchain for the crates that build native code (aws-lc, tokenizers' esaxx).
RUN apt-get update \
 && apt-get install -y --no-install-recommends cmake clang g++ make perl pkg-config \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p ragshift --bin ragshift \
 && install -D -m 0755 target/release/ragshift /out/ragshift

FROM debian:${DEBIAN_RELEASE}-slim AS worker
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --create-home --home-dir /home/ragshift ragshift
COPY --from=build /out/ragshift /usr/local/bin/ragshift
COPY --from=model --chown=10001:10001 . /opt/ragshift/model/
ENV RAGSHIFT_HOME=/home/ragshift/.cache/ragshift \
    RAGSHIFT_MODEL_DIR=/opt/ragshift/model
USER 10001:10001
WORKDIR /home/ragshift
ENTRYPOINT ["ragshift"]
CMD ["--help"]
