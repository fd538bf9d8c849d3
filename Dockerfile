# Both services, built in release mode once, then each copied into its own
# small Debian image that runs it as a non-root user.
#
#   docker build --target invitation-service -t invitation-service .
#   docker build --target notification-service -t notification-service .
#
# `./run` (at the top of the repository) builds and starts everything with
# docker-compose.yml. This file uses nothing but what the classic builder
# and BuildKit both understand, so it builds with any docker CLI, with or
# without buildx. Rebuilds stay quick the portable way: the dependencies are
# compiled in a layer of their own from the manifests alone (with stub
# sources), so editing our code recompiles only our crates. Base images are
# pinned by tag; where no registry can be reached, docker/base-images.sh
# makes them under the same names (`./run` does that by itself).

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
# The dependency layer: the manifests, the lock file and the contract (its
# build script needs the .proto files), with empty sources for our crates.
COPY Cargo.toml Cargo.lock ./
COPY proto proto
COPY service-kit/Cargo.toml service-kit/
COPY invitation-service/Cargo.toml invitation-service/
COPY notification-service/Cargo.toml notification-service/
COPY tests/Cargo.toml tests/
COPY bench/Cargo.toml bench/
RUN mkdir -p service-kit/src invitation-service/src notification-service/src tests/src tests/e2e tests/faults bench/src \
 && touch service-kit/src/lib.rs invitation-service/src/lib.rs notification-service/src/lib.rs tests/src/lib.rs \
    tests/e2e/main.rs tests/faults/main.rs \
 && for bin in invitation-service notification-service bench; do echo 'fn main() {}' > "$bin/src/main.rs"; done \
 && cargo build --release --locked -p invitation-service -p notification-service \
 && cargo clean --release -p service-kit -p invitation-service -p notification-service
# Our code. The stub builds were cleaned away above, so these are compiled
# from the real sources whatever their timestamps.
COPY . .
RUN cargo build --release --locked -p invitation-service -p notification-service \
 && mkdir -p /out \
 && cp target/release/invitation-service target/release/notification-service /out/

FROM debian:bookworm-slim AS runtime
# A fixed uid/gid so that volume ownership is the same in every build. The
# data and secret folders are created here, owned by that user, so that a
# new named volume mounted on them starts out writable by it.
RUN groupadd --system --gid 10001 app \
 && useradd --system --uid 10001 --gid app --home-dir /data --no-create-home --shell /usr/sbin/nologin app \
 && mkdir -p /data /secrets \
 && chown app:app /data /secrets \
 && chmod 0700 /secrets
WORKDIR /data
ENV RUST_LOG=info \
    JWT_SECRET_FILE=/secrets/jwt-secret

FROM runtime AS notification-service
COPY --from=build /out/notification-service /usr/local/bin/notification-service
ENV NOTIFICATION_LISTEN_ADDR=0.0.0.0:50052 \
    NOTIFICATION_DATA_DIR=/data
EXPOSE 50052
USER app:app
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 CMD ["notification-service", "healthcheck"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["notification-service"]

FROM runtime AS invitation-service
COPY --from=build /out/invitation-service /usr/local/bin/invitation-service
ENV INVITATION_LISTEN_ADDR=0.0.0.0:50051 \
    INVITATION_DATA_DIR=/data \
    NOTIFICATION_ENDPOINT=http://notification-service:50052
EXPOSE 50051
USER app:app
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 CMD ["invitation-service", "healthcheck"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["invitation-service"]
