# The operator / link agent image: the same `orbitnet` binary; the Deployment runs
# `orbitnet operator`, the agent's DaemonSet `orbitnet agent` (as root, privileged).
#   docker build -f node-image/operator.Dockerfile -t orbitnet/operator:0.1.0 .   (repo root)
FROM rust:1.89-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p orbitnet

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/orbitnet /usr/local/bin/orbitnet
ENTRYPOINT ["/usr/local/bin/orbitnet"]
