# syntax=docker/dockerfile:1
# trigsync: build with the same npm commands CI runs (.ci/run), then ship only what runs.

FROM node:20-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: only dev dependencies have install scripts (native builds for the test tooling,
# which the slim image could not compile), and neither the build nor the runtime needs them.
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev --no-audit --no-fund

FROM node:20-slim
ENV NODE_ENV=production \
    TRIGSYNC_CONFIG=/etc/trigsync/trigsync.yaml
WORKDIR /app
# What the runtime reads: dist/ and bin/, sql/ (the migrations) and package.json (type, version).
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY bin ./bin
COPY sql ./sql
# Owned by root, run as node: the process cannot rewrite its own code or migrations.
USER node
EXPOSE 9753
# node:20-slim has no curl. The port follows TRIGSYNC_METRICS_PORT when set, as the daemon's does.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:'+(process.env.TRIGSYNC_METRICS_PORT||9753)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
ENTRYPOINT ["node", "bin/trigsync.js"]
CMD ["start"]
