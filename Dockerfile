# A small static, non-root image: a musl build in the builder, only the binary in the result.
FROM rust:1-bookworm AS build
RUN rustup target add x86_64-unknown-linux-musl && apt-get update && apt-get install -y --no-install-recommends musl-tools
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY crds ./crds
RUN cargo build --release --locked --target x86_64-unknown-linux-musl && \
    strip target/x86_64-unknown-linux-musl/release/tierflow

FROM scratch
COPY --from=build /src/target/x86_64-unknown-linux-musl/release/tierflow /tierflow
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/tierflow"]
CMD ["run", "--leader-elect"]
