# Both services, built in release mode once, then each copied into its own
# small Debian image that runs it as a non-root user.
#
#   docker build --target invitation-service -t invitation-service .
#   docker build --target notification-service -t notification-service .
#
# docker-compose.yml builds both. Needs BuildKit (the default builder since
# Docker 23; with the older standalone docker-compose 1.29 set
# DOCKER_BUILDKIT=1 COMPOSE_DOCKER_CLI_BUILD=1): the cargo registry and the
# target folder live in cache mounts, so a second build compiles only what
# changed. Base images are pinned by tag; where no registry can be reached,
# docker/base-images.sh makes them under the same names.

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
# The binaries leave the cache-mounted target folder by being copied to /out.
RUN --mount=type=cache,id=discreet-invitations-cargo-registry,target=/usr/local/cargo/registry \
    --mount=type=cache,id=discreet-invitations-target,target=/src/target \
    cargo build --release --locked -p invitation-service -p notification-service \
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
