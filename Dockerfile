# syntax=docker/dockerfile:1
# replisql node image. Build:  docker build -t replisql:local .
# Run one node:                docker run --rm -v $PWD/config.json:/etc/replisql/config.json:ro replisql:local node --config /etc/replisql/config.json --id 1
# The 3-node cluster with MySQL is in docker-compose.yml; see docs/deployment.md.

# ---------------------------------------------------------------- build stage
FROM node:20-bookworm-slim AS build

# better-sqlite3 is compiled here with node-gyp: python3, make and g++, against the headers that
# ship in this image (/usr/local/include/node), so nothing is downloaded at build time and the
# binary matches the runtime stage's Node and glibc exactly.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
ENV npm_config_build_from_source=true \
    npm_config_nodedir=/usr/local \
    npm_config_fund=false \
    npm_config_audit=false \
    npm_config_update_notifier=false

WORKDIR /opt/replisql
# Dependencies first: this layer is rebuilt only when the lock file changes.
COPY package.json package-lock.json ./
RUN npm ci
COPY tsconfig.json ./
COPY src ./src
COPY bin ./bin
# Then drop what only the build needed: dev dependencies, source maps, and better-sqlite3's
# compiler output and SQLite sources (the compiled better_sqlite3.node stays).
RUN npm run build \
 && npm prune --omit=dev \
 && find dist -name '*.map' -delete \
 && (cd node_modules/better-sqlite3 \
     && rm -rf deps src build/Release/obj build/Release/obj.target build/Release/*.a build/Release/test_extension.node) \
 && node -e "new (require('better-sqlite3'))(':memory:').prepare('select 1').get()"

# ---------------------------------------------------------------- runtime stage
FROM node:20-bookworm-slim AS runtime

ENV NODE_ENV=production
# A dedicated unprivileged user; the code is owned by root and read-only for it.
RUN groupadd --system --gid 10001 replisql \
 && useradd --system --uid 10001 --gid replisql --home-dir /var/lib/replisql --no-create-home --shell /usr/sbin/nologin replisql \
 && mkdir -p /var/lib/replisql /var/log/replisql /etc/replisql \
 && chown replisql:replisql /var/lib/replisql /var/log/replisql \
 && chmod 0750 /var/lib/replisql /var/log/replisql

WORKDIR /opt/replisql
COPY --from=build /opt/replisql/package.json ./package.json
COPY --from=build /opt/replisql/node_modules ./node_modules
COPY --from=build /opt/replisql/dist ./dist
COPY --from=build /opt/replisql/bin ./bin

# The operation log and hard state (config: nodes[i].dataDir under /var/lib/replisql) and the
# per-node log files (config: logDir = /var/log/replisql). Both must outlive the container:
# mount named volumes here (docker-compose.yml does). Losing dataDir while keeping the database
# makes the node refuse to start, by design.
VOLUME ["/var/lib/replisql", "/var/log/replisql"]

USER replisql:replisql
# The node's port for peers and clients (the port in config.json; 7001 in deploy/docker/config.json).
EXPOSE 7001
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "bin/replisql.js"]
CMD ["node", "--config", "/etc/replisql/config.json", "--id", "1"]
