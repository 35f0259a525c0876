# switchboard: every service and the dashboard in one small image.
#
#   docker build -t switchboard .
#   docker run -d --name switchboard -e SWITCHBOARD_ADMIN_PASSWORD=... \
#     -p 127.0.0.1:8080:8080 -p 127.0.0.1:9000:9000 -v switchboard-data:/data switchboard
#
# See the README's Docker section. Inside the container everything listens
# on 0.0.0.0 (set below); which ports reach the outside is `-p`'s choice.

# ---- build: the official Rust image, the same toolchain as CI ----
FROM rust:1.95-bookworm AS build
WORKDIR /src
# Dependencies first, so that editing the sources does not rebuild them.
COPY Cargo.toml Cargo.lock ./
COPY bench/reference bench/reference
RUN mkdir src \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs \
    && cargo build --release --locked --bin switchboard \
    && rm -rf src
COPY src src
COPY templates templates
COPY static static
RUN touch src/main.rs src/lib.rs \
    && cargo build --release --locked --bin switchboard \
    && strip target/release/switchboard

# ---- run: slim Debian, a non-root user, nothing else ----
FROM debian:bookworm-slim
# procps gives `uptime`, which is on exec's default allowlist; the others
# (date, uname, ls, df, echo, whoami) are in coreutils already.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends procps \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --home-dir /data --shell /usr/sbin/nologin switchboard \
    && install -d -m 0700 -o switchboard -g switchboard /data
COPY --from=build /src/target/release/switchboard /usr/local/bin/switchboard

# The services and the dashboard listen on every interface of the container;
# the dashboard over HTTPS with a certificate generated in /data at first
# start (its SHA-256 is in the log). Behind a TLS proxy instead, set
# SWITCHBOARD_WEB_TLS=off and SWITCHBOARD_WEB_BEHIND_PROXY=true.
ENV SWITCHBOARD_DATA_DIR=/data \
    SWITCHBOARD_WEB_LISTEN=0.0.0.0:8080 \
    SWITCHBOARD_WEB_TLS=self-signed \
    SWITCHBOARD_ECHO_LISTEN=0.0.0.0:9000 \
    SWITCHBOARD_UDP_ECHO_LISTEN=0.0.0.0:9001 \
    SWITCHBOARD_TIME_LISTEN=0.0.0.0:9002 \
    SWITCHBOARD_EXEC_LISTEN=0.0.0.0:9003 \
    SWITCHBOARD_FILES_LISTEN=0.0.0.0:9004 \
    SWITCHBOARD_FILES_CLASSIC_LISTEN=0.0.0.0:9005 \
    SWITCHBOARD_LOGIN_LISTEN=0.0.0.0:9006

# Files, accounts, the generated HMAC key and the audit log.
VOLUME /data
WORKDIR /data

# web, echo, udp-echo, time, exec, files, files-classic, login
EXPOSE 8080/tcp 9000/tcp 9001/udp 9002/udp 9003/tcp 9004/tcp 9005/tcp 9006/tcp

USER 10001:10001

# The binary asks its own /healthz (on loopback inside the container).
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["switchboard", "health"]

ENTRYPOINT ["switchboard"]
CMD ["serve"]
