/**
 * The traffic generator of the end-to-end tests, run inside a namespace:
 *
 *   ip netns exec NS node test/netns/client.ts '{"proto":"tcp","ip":"172.30.0.10","port":80,"count":20,"timeoutMs":1000}'
 *
 * Makes `count` requests one after the other (each bounded by timeoutMs) to a
 * pod-server.ts, and prints one JSON array of results on stdout:
 *   {"ok":true,"pod":..,"client":..,"local":..,"ms":..} or {"ok":false,"error":..,"ms":..}
 * Errors: "refused" (RST, or ICMP port unreachable), "unreachable" (ICMP host
 * unreachable or admin prohibited), "net-unreachable" (no route, ICMP net
 * unreachable), "timeout" (silence: DROP), "reset" (RST after connecting),
 * "bad-reply: ..." (an answer that is not pod-server JSON), else the errno code.
 * UDP sockets are connected so that ICMP errors are reported.
 *
 * With `--serve` it stays up and takes one batch per stdin line, `{"id":N,"spec":{...}}`, answering each with one
 * line `{"id":N,"results":[...]}` (batches run concurrently, each one request after the other); it exits when stdin
 * closes. test/netns/traffic.ts keeps one per namespace, which saves a Node start (~0.1 s) per batch.
 */
import { createSocket } from 'node:dgram';
import { connect, isIPv6 } from 'node:net';

interface Spec {
  readonly proto: 'tcp' | 'udp';
  readonly ip: string;
  readonly port: number;
  readonly count: number;
  readonly timeoutMs: number;
  readonly sourcePort?: number;
  readonly sourceIp?: string;
}

type Result = { ok: true; pod: string; client: string; local: string; ms: number } | { ok: false; error: string; ms: number };

const ERRORS: Readonly<Record<string, string>> = {
  ECONNREFUSED: 'refused',
  EHOSTUNREACH: 'unreachable',
  ENETUNREACH: 'net-unreachable',
  ETIMEDOUT: 'timeout',
  ECONNRESET: 'reset',
  EPIPE: 'reset',
};

function failure(err: unknown): string {
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string') return ERRORS[code] ?? code;
  return err instanceof Error ? err.message : String(err);
}

function parseReply(text: string): Omit<Extract<Result, { ok: true }>, 'ms'> | string {
  try {
    const v = JSON.parse(text.split('\n')[0] ?? '') as Record<string, unknown>;
    if (typeof v.pod === 'string' && typeof v.client === 'string' && typeof v.local === 'string') {
      return { ok: true, pod: v.pod, client: v.client, local: v.local };
    }
  } catch {
    // fall through
  }
  return `bad-reply: ${JSON.stringify(text.slice(0, 200))}`;
}

function tcpOnce(spec: Spec): Promise<Omit<Extract<Result, { ok: true }>, 'ms'> | string> {
  return new Promise((resolve) => {
    let data = '';
    let settled = false;
    const socket = connect({
      host: spec.ip,
      port: spec.port,
      ...(spec.sourcePort !== undefined ? { localPort: spec.sourcePort } : {}),
      ...(spec.sourceIp !== undefined ? { localAddress: spec.sourceIp } : {}),
    });
    const done = (outcome: Omit<Extract<Result, { ok: true }>, 'ms'> | string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(outcome);
    };
    const timer = setTimeout(() => done('timeout'), spec.timeoutMs);
    socket.on('connect', () => socket.write('hello\n'));
    socket.on('data', (chunk) => {
      data += chunk.toString('utf8');
    });
    socket.on('end', () => done(parseReply(data)));
    socket.on('error', (err) => done(failure(err)));
  });
}

function udpOnce(spec: Spec): Promise<Omit<Extract<Result, { ok: true }>, 'ms'> | string> {
  return new Promise((resolve) => {
    const socket = createSocket(isIPv6(spec.ip) ? 'udp6' : 'udp4');
    let settled = false;
    const done = (outcome: Omit<Extract<Result, { ok: true }>, 'ms'> | string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.close(() => resolve(outcome));
    };
    const timer = setTimeout(() => done('timeout'), spec.timeoutMs);
    socket.on('error', (err) => done(failure(err)));
    socket.on('message', (msg) => done(parseReply(msg.toString('utf8'))));
    socket.bind({ port: spec.sourcePort ?? 0, ...(spec.sourceIp !== undefined ? { address: spec.sourceIp } : {}) }, () => {
      // A failed connect (no route) is passed to this callback, not emitted as 'error'.
      socket.connect(spec.port, spec.ip, (err?: Error) => {
        if (err) done(failure(err));
        else socket.send('hello\n');
      });
    });
  });
}

async function batch(spec: Spec): Promise<Result[]> {
  const results: Result[] = [];
  for (let i = 0; i < spec.count; i++) {
    const started = performance.now();
    const outcome = spec.proto === 'tcp' ? await tcpOnce(spec) : await udpOnce(spec);
    const ms = Math.round((performance.now() - started) * 10) / 10;
    results.push(typeof outcome === 'string' ? { ok: false, error: outcome, ms } : { ...outcome, ms });
  }
  return results;
}

const raw = process.argv[2];
if (raw === undefined) throw new Error('usage: client.ts \'{"proto":"tcp","ip":...,"port":...,"count":...,"timeoutMs":...}\' | --serve');
if (raw === '--serve') {
  let buffered = '';
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', (chunk: string) => {
    buffered += chunk;
    for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
      const { id, spec } = JSON.parse(buffered.slice(0, nl)) as { id: number; spec: Spec };
      buffered = buffered.slice(nl + 1);
      void batch(spec).then((results) => process.stdout.write(`${JSON.stringify({ id, results })}\n`));
    }
  });
} else {
  process.stdout.write(`${JSON.stringify(await batch(JSON.parse(raw) as Spec))}\n`);
}
