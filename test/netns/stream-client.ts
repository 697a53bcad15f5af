/**
 * Stream checks for the end-to-end tests, run inside a namespace:
 *
 *   ip netns exec NS node test/netns/stream-client.ts '{"kind":"bulk","ip":"172.30.0.10","port":9000,"bytes":33554432}'
 *   ip netns exec NS node test/netns/stream-client.ts '{"kind":"half-close","ip":"172.30.0.10","port":80}'
 *   ip netns exec NS node test/netns/stream-client.ts '{"kind":"hold","ip":"172.30.0.10","port":9000,"holdMs":3000}'
 *
 * bulk: sends `bytes` of pseudo-random data to an echo port, half-closes,
 *   reads everything back; prints sha256 of what was sent and received.
 * half-close: sends a request without a newline and half-closes; the pod
 *   server answers on end-of-stream; prints the answer (what a proxy without
 *   half-close loses).
 * hold: opens an echo connection, prints "open", echoes a probe every 200 ms
 *   for holdMs (a connection that stays open across changes), prints the probe
 *   results.
 * Output: one JSON object on the last stdout line.
 */
import { createHash, randomFillSync } from 'node:crypto';
import { connect, type Socket } from 'node:net';

interface Spec {
  readonly kind: 'bulk' | 'half-close' | 'hold';
  readonly ip: string;
  readonly port: number;
  readonly bytes?: number;
  readonly holdMs?: number;
  readonly timeoutMs?: number;
}

const spec = JSON.parse(process.argv[2] ?? '{}') as Spec;
const deadline = setTimeout(() => finish({ ok: false, error: 'timeout' }), spec.timeoutMs ?? 60_000);

function finish(result: Record<string, unknown>): void {
  clearTimeout(deadline);
  process.stdout.write(`${JSON.stringify(result)}\n`);
  process.exit(0);
}

function open(): Socket {
  const s = connect({ host: spec.ip, port: spec.port });
  s.on('error', (err) => finish({ ok: false, error: (err as NodeJS.ErrnoException).code ?? err.message }));
  return s;
}

function bulk(): void {
  const total = spec.bytes ?? 1 << 20;
  const sent = createHash('sha256');
  const received = createHash('sha256');
  let receivedBytes = 0;
  const t0 = Date.now();
  const s = open();
  s.on('data', (chunk: Buffer) => {
    received.update(chunk);
    receivedBytes += chunk.length;
  });
  s.on('end', () =>
    finish({ ok: true, sent: sent.digest('hex'), received: received.digest('hex'), bytes: total, receivedBytes, ms: Date.now() - t0 }),
  );
  s.on('connect', () => {
    let left = total;
    const write = (): void => {
      while (left > 0) {
        const chunk = randomFillSync(Buffer.allocUnsafe(Math.min(left, 64 * 1024)));
        sent.update(chunk);
        left -= chunk.length;
        if (!s.write(chunk)) return void s.once('drain', write);
      }
      s.end();
    };
    write();
  });
}

function halfClose(): void {
  const s = open();
  let data = '';
  s.on('data', (c: Buffer) => (data += c.toString()));
  s.on('end', () => finish({ ok: data.length > 0, reply: data.trim() }));
  s.on('connect', () => s.end('no newline, then FIN'));
}

function hold(): void {
  const s = open();
  const results: boolean[] = [];
  let pending = '';
  let buffered = '';
  s.on('data', (c: Buffer) => {
    buffered += c.toString();
    if (pending && buffered.includes(pending)) {
      results.push(true);
      buffered = '';
      pending = '';
    }
  });
  s.on('close', () => finish({ ok: false, error: 'closed', results }));
  s.on('connect', () => {
    process.stdout.write('open\n');
    const t0 = Date.now();
    const probe = (): void => {
      if (pending) results.push(false);
      if (Date.now() - t0 >= (spec.holdMs ?? 1000)) {
        s.removeAllListeners('close');
        s.destroy();
        return finish({ ok: results.length > 0 && results.every(Boolean), results });
      }
      pending = `probe-${results.length}\n`;
      s.write(pending);
      setTimeout(probe, 200);
    };
    probe();
  });
}

if (spec.kind === 'bulk') bulk();
else if (spec.kind === 'half-close') halfClose();
else if (spec.kind === 'hold') hold();
else finish({ ok: false, error: `unknown kind ${String(spec.kind)}` });
