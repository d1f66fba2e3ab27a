# Dockerfile — the one `acasa` binary in a small runtime image.
#
#   docker build -t acasa:dev .
#   docker run --rm acasa:dev --help        # roles: serve, project, migrate, token, …
#
# Builder: the Rust toolchain the project uses; protobuf is compiled in-process by protox,
# so no protoc is needed. Runtime: Debian slim, CA certificates, an unprivileged user.

FROM rust:1.95-bookworm AS builder
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin acasa \
    && cp target/release/acasa /usr/local/bin/acasa

FROM debian:bookworm-slim
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 acasa \
    && useradd --system --uid 10001 --gid acasa --home-dir /var/lib/acasa --create-home \
       --shell /usr/sbin/nologin acasa
COPY --from=builder /usr/local/bin/acasa /usr/local/bin/acasa
USER 10001:10001
WORKDIR /var/lib/acasa
ENV ACASA_STATE_DIR=/var/lib/acasa \
    ACASA_LOG=info \
    ACASA_LOG_FORMAT=json
# gRPC: demo 50050, registry 50051, placements 50052, grants 50053, referrals 50054, content 50055.
EXPOSE 50050-50055
# SIGTERM (docker stop, Kubernetes) triggers the binary's graceful shutdown.
STOPSIGNAL SIGTERM
ENTRYPOINT ["acasa"]
CMD ["--help"]
