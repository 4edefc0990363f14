# Build: libpq and SQLite are compiled from source by the bundled -sys crates.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin admin-api-keys

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home /var/lib/admin-api-keys --create-home app
COPY --from=build /src/target/release/admin-api-keys /usr/local/bin/admin-api-keys
USER app
WORKDIR /var/lib/admin-api-keys
ENV BIND_ADDR=0.0.0.0:8080
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s CMD curl -fsS http://127.0.0.1:8080/readyz || exit 1
ENTRYPOINT ["admin-api-keys"]
CMD ["serve"]
