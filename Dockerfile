# The demo cluster's images, built from the repository root (see docker-compose.yml):
#   --target counter-app   one counter-app node
#   --target balancer      the tether-balancer binary
FROM node:22-bookworm-slim AS build
WORKDIR /src
# better-sqlite3 (the counter-app's embedded store) compiles its addon when no prebuilt binary
# fits, so the toolchain is there; it stays in this stage.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
COPY packages/middleware/package.json packages/middleware/
COPY packages/balancer/package.json packages/balancer/
COPY examples/counter-app/package.json examples/counter-app/
# Dependencies first, so editing sources does not reinstall them. --ignore-scripts because the
# root "prepare" script builds sources that are not copied yet; better-sqlite3 is then built
# on its own.
RUN npm ci --ignore-scripts --no-audit --no-fund && npm rebuild better-sqlite3
COPY tsconfig.base.json ./
COPY packages/middleware packages/middleware
COPY packages/balancer packages/balancer
COPY examples/counter-app examples/counter-app
# npm links a workspace's bins only when their files exist, and the packages are copied only
# after `npm ci`: the final rebuild links tether-balancer into node_modules/.bin.
RUN npx tsc -b packages/middleware packages/balancer examples/counter-app \
 && npm prune --omit=dev --ignore-scripts --no-audit --no-fund \
 && npm rebuild --ignore-scripts

FROM node:22-bookworm-slim AS runtime
ENV NODE_ENV=production PATH=/app/node_modules/.bin:$PATH
WORKDIR /app
COPY --from=build --chown=node:node /src /app
USER node

FROM runtime AS counter-app
ENV HOST=0.0.0.0 PORT=3000
EXPOSE 3000
CMD ["node", "examples/counter-app/dist/server.js"]

FROM runtime AS balancer
EXPOSE 8080 9090
CMD ["tether-balancer", "--config", "/etc/tether/balancer.yaml"]
