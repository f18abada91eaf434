# Polyhead server image: docker build -t polyhead:0.1.0 . && docker run -p 4000:4000 polyhead:0.1.0
# Everything comes from the npm registry at build time (.npmrc skips onnxruntime's CUDA download); nothing is
# downloaded when the container runs. Settings: the environment (src/config.ts), e.g. DATABASE_URL.
FROM node:20.19-bookworm-slim AS build
WORKDIR /app
COPY . .
# npm ci runs `prepare`: the Prisma client and tsc to dist/. Dev dependencies go afterwards.
RUN npm ci --no-audit --no-fund && npm prune --omit=dev --no-audit --no-fund

FROM node:20.19-bookworm-slim
ENV NODE_ENV=production \
    PORT=4000 \
    HOST=0.0.0.0 \
    POLYHEAD_DATA_DIR=/var/lib/polyhead
WORKDIR /app
COPY --from=build --chown=node:node /app /app
RUN mkdir -p /var/lib/polyhead && chown node:node /var/lib/polyhead
USER node
EXPOSE 4000
VOLUME /var/lib/polyhead
HEALTHCHECK --interval=10s --timeout=3s --start-period=120s \
  CMD node -e "fetch('http://127.0.0.1:' + (process.env.PORT || 4000) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"
# What `npm start` runs (its node flag: src/server/node-flags.ts), without npm in between, so that SIGTERM
# reaches the server and starts its drain.
CMD ["node", "--max-semi-space-size=64", "dist/src/main.js"]
