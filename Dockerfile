# syntax=docker/dockerfile:1
# kube-proxy-ts image: Node.js 24 running the agent as one bundle (`npm run
# build`: the sources and their dependencies in dist/, build/bundle.ts; ~38 MiB
# less resident than loading them as separate modules, and no node_modules),
# with the tools the agent runs on the node:
# iptables (Debian ships both backends: iptables-nft-* and iptables-legacy-*,
# ip6tables too), conntrack (flushing stale UDP flows), iproute2 (the
# interface addresses NodePorts listen on, `ip -j addr show`; `trace`), ipset
# (destroying what upstream's ipvs mode left, src/ipvs-leftovers.ts) and nfacct
# (the iptables mode's packet counters, iptables/nfacct.ts).
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
# What the final image holds (sizes measured with the stand-in bases, README
# "Installing on a cluster"): Debian's base system without its package
# manager, iptables/iproute2/conntrack/ipset, a stripped node and the bundle with
# its compile cache. Not node:24-bookworm-slim itself: it carries
# npm, corepack and yarn in a layer that a later `rm` cannot shrink.
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

# The bundle (build/bundle.ts): `npm ci` with the devDependencies (rolldown,
# pinned in package.json) in this stage only, then the build, which fails on
# anything it cannot bundle. Only dist/ reaches the final image: the agent's
# code and its dependencies' (the licences of those in
# dist/THIRD-PARTY-LICENSES.txt), no node_modules.
FROM ${NODE_IMAGE} AS bundle
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY build ./build
COPY src ./src
COPY proxier ./proxier
COPY iptables ./iptables
COPY userspace ./userspace
COPY nftables ./nftables
RUN node build/bundle.ts

# The operating system: Debian's base and the runtime tools, installed with
# no recommends and no apt lists, caches or logs (the slim base's dpkg
# configuration keeps docs, man pages and translations out, copyright files
# excepted). Then the files of what only installs or configures packages go:
# apt (and gnutls, which only apt's https method links), dpkg and its
# database, debconf, perl (nothing else here uses it), gpgv and the archive
# keyring, e2fsprogs (mkfs/fsck), adduser; and glibc's iconv modules (gconv:
# node converts text with its own ICU, iptables, ip and conntrack convert
# nothing). About 30 MB; a shell, coreutils and util-linux stay for
# `kubectl exec`. Files only, never folders: with merged /usr, /bin, /lib and
# /sbin are symlinks that dpkg lists among a package's folders; a package the
# base lacks is skipped. The final stage copies the result as one layer, so
# what is removed is really gone.
FROM ${BASE_IMAGE} AS os
RUN apt-get update \
 && apt-get install -y --no-install-recommends iptables nftables iproute2 conntrack ipset nfacct \
 && rm -rf /var/lib/apt/lists/* \
 && ln -s /app/dist/kube-proxy-ts.mjs /usr/local/bin/kube-proxy-ts \
 && dpkg -L $(dpkg-query -W -f '${Package} ' apt libapt-pkg6.0 libgnutls30 debconf perl-base gpgv debian-archive-keyring \
      e2fsprogs libext2fs2 libss2 adduser dpkg 2>/dev/null) >/tmp/drop \
 && while read -r f; do [ -d "$f" ] || rm -f "$f"; done </tmp/drop \
 && rm -rf /tmp/drop /var/lib/apt /var/cache/apt /var/lib/dpkg /var/cache/debconf /var/log/* /usr/lib/*/gconv

FROM scratch
COPY --from=os / /
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
COPY --from=node /node /usr/local/bin/node
WORKDIR /app
ENV NODE_ENV=production
# dist/kube-proxy-ts.mjs is executable (the build sets its mode): `kube-proxy-ts`
# on PATH (for kubectl exec ... kube-proxy-ts --cleanup, diff, trace).
COPY --from=bundle /app/dist ./dist
# Node's compile cache, warmed here (dist/kube-proxy-ts.mjs turns it on, in
# /app/node_modules/.cache as src/entry.js does beside the sources; the only
# thing in node_modules): each chunk's V8 code, so the agent starts without
# compiling its 4 MB of JavaScript. Every chunk but the two entries imported
# once (none acts on import), then `--help` runs the executable; with the
# ENTRYPOINT's flags (V8 rejects code cached under other flags).
RUN node --max-semi-space-size=2 --input-type=module -e " \
      import { enableCompileCache } from 'node:module'; import { readdirSync } from 'node:fs'; \
      enableCompileCache('/app/node_modules/.cache/kube-proxy-ts-compile'); \
      for (const f of readdirSync('/app/dist')) \
        if (f.endsWith('.mjs') && f !== 'main.mjs' && f !== 'kube-proxy-ts.mjs') await import('/app/dist/' + f);" \
 && node --max-semi-space-size=2 /app/dist/kube-proxy-ts.mjs --help >/dev/null
# --max-semi-space-size=2 as in the executable's shebang (src/entry.js's): caps V8's young
# generation. MALLOC_ARENA_MAX=1: one glibc malloc arena for every thread
# (glibc reads it at process start, so it is set here and not by the agent):
# the agent at 10,000 services settles ~27 MiB lower (median 287 vs 314 MiB)
# for no measurable CPU or start-up time (BENCHMARKS.md).
# MALLOC_TRIM_THRESHOLD_=131072: glibc returns free memory at the top of its
# heap beyond 128 KiB, and setting it turns off glibc's dynamic thresholds,
# which after the first large buffer freed raise both the mmap threshold and
# the trim threshold (up to 32 / 64 MiB) and keep what start-up and each sync
# freed: the idle agent ~1 MiB and 10,000 services ~4 MiB lower, for no
# measurable CPU (BENCHMARKS.md "The idle agent, fifth pass").
ENV MALLOC_ARENA_MAX=1 MALLOC_TRIM_THRESHOLD_=131072
ENTRYPOINT ["node", "--max-semi-space-size=2", "/app/dist/kube-proxy-ts.mjs"]
