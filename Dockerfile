# syntax=docker/dockerfile:1
# Build: libpq, OpenSSL and SQLite are compiled from source by the bundled -sys crates, so
# the runtime image needs no libraries beyond glibc.
FROM rust:1-bookworm AS build
WORKDIR /src

# Dependencies in their own layer: built from the manifest with placeholder sources, so a
# change to src/ rebuilds only this crate (minutes less per image) while Cargo.toml,
# Cargo.lock and .cargo/config.toml are unchanged.
COPY Cargo.toml Cargo.lock build.rs ./
COPY .cargo .cargo
RUN mkdir -p src bench \
    && echo 'fn main() {}' > src/main.rs \
    && echo 'fn main() {}' > bench/seed.rs \
    && touch src/lib.rs \
    && cargo build --release --locked --bin admin-api-keys \
    && rm -rf src bench

COPY migrations migrations
COPY src src
COPY bench/seed.rs bench/seed.rs
# COPY keeps the files' own times, which may be older than the placeholder build: touch them
# so cargo rebuilds this crate rather than shipping the placeholder.
RUN touch src/main.rs src/lib.rs \
    && cargo build --release --locked --bin admin-api-keys

FROM debian:bookworm-slim
# ca-certificates: for `sslmode=verify-full` to a managed PostgreSQL. No curl: the health
# check is the binary's own `healthcheck` subcommand.
# Not pinned (DL3008): Debian replaces point-release versions, so a pin breaks the build
# within months; the base image tag is what fixes the release.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 10001 app \
    && useradd --uid 10001 --gid 10001 --home-dir /data --no-create-home --shell /usr/sbin/nologin app \
    && mkdir /data \
    && chown 10001:10001 /data
COPY --from=build /src/target/release/admin-api-keys /usr/local/bin/admin-api-keys

# SQLite by default, in the volume; set DATABASE_URL=postgres://… to use PostgreSQL.
ENV BIND_ADDR=0.0.0.0:8080 \
    DATABASE_URL=sqlite:///data/admin-api-keys.db
VOLUME ["/data"]
WORKDIR /data
USER 10001:10001
EXPOSE 8080
# Reads BIND_ADDR (0.0.0.0 is checked on 127.0.0.1); exit 0 only on a 200 from /readyz.
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
    CMD ["admin-api-keys", "healthcheck", "--timeout-secs", "3"]
ENTRYPOINT ["admin-api-keys"]
CMD ["serve"]
