/**
 * The load generator of the userspace proxy benchmark, run inside the
 * benchmark's namespace: `node client.ts '{"kind":"bulk","port":P,"seconds":3}'`
 *   bulk     one connection streams 256 KiB writes for `seconds`, then FIN;
 *            the sink's byte count confirms what arrived: bytes per second;
 *   down     one connection reads what the source streams for `seconds`: bytes per second;
 *   rate     `concurrency` loops of connect / read "ok" / close: connections per second;
 *   latency  one connection, 64-byte ping-pong through an echo: p50 and p99 round trip.
 * Prints one JSON line.
 */
import { connect } from 'node:net';

interface Spec {
  kind: 'bulk' | 'down' | 'rate' | 'latency';
  port: number;
  seconds: number;
  concurrency?: number;
}
const spec = JSON.parse(process.argv[2]!) as Spec;
const out = (v: unknown) => process.stdout.write(`${JSON.stringify(v)}\n`);

function bulk(): void {
  const chunk = Buffer.alloc(256 * 1024, 7);
  const s = connect({ host: '127.0.0.1', port: spec.port, noDelay: true });
  let sent = 0;
  let reply = '';
  const t0 = performance.now();
  let stop = false;
  setTimeout(() => (stop = true), spec.seconds * 1000);
  const pump = (): void => {
    while (!stop) {
      sent += chunk.length;
      if (!s.write(chunk)) return void s.once('drain', pump);
    }
    s.end();
  };
  s.on('connect', pump);
  s.on('data', (d: Buffer) => (reply += d.toString()));
  s.on('end', () => {
    const secs = (performance.now() - t0) / 1000;
    out({ bytes: Number(reply.trim()), sent, seconds: secs, bytesPerSecond: Number(reply.trim()) / secs });
  });
}

function down(): void {
  const s = connect({ host: '127.0.0.1', port: spec.port });
  let bytes = 0;
  let t0 = 0;
  s.on('connect', () => {
    t0 = performance.now();
    setTimeout(() => {
      const secs = (performance.now() - t0) / 1000;
      s.destroy();
      out({ bytes, seconds: secs, bytesPerSecond: bytes / secs });
    }, spec.seconds * 1000);
  });
  s.on('data', (d: Buffer) => (bytes += d.length));
  s.on('error', () => {});
}

function rate(): void {
  const until = performance.now() + spec.seconds * 1000;
  let done = 0;
  let failed = 0;
  let loops = spec.concurrency ?? 16;
  const t0 = performance.now();
  const once = (): void => {
    if (performance.now() >= until) {
      if (--loops === 0) out({ connections: done, failed, perSecond: done / ((performance.now() - t0) / 1000) });
      return;
    }
    const s = connect({ host: '127.0.0.1', port: spec.port });
    let got = '';
    s.on('data', (d: Buffer) => (got += d.toString()));
    s.on('error', () => {
      failed++;
      s.destroy();
    });
    s.on('close', () => {
      if (got === 'ok\n') done++;
      once();
    });
  };
  for (let i = 0; i < loops; i++) once();
}

function latency(): void {
  const msg = Buffer.alloc(64, 1);
  const s = connect({ host: '127.0.0.1', port: spec.port, noDelay: true });
  const samples: number[] = [];
  const until = performance.now() + spec.seconds * 1000;
  let got = 0;
  let t = 0;
  const ping = (): void => {
    got = 0;
    t = performance.now();
    s.write(msg);
  };
  s.on('connect', ping);
  s.on('data', (d: Buffer) => {
    got += d.length;
    if (got < msg.length) return;
    samples.push(performance.now() - t);
    if (performance.now() < until) return ping();
    s.destroy();
    samples.sort((a, b) => a - b);
    const q = (p: number) => samples[Math.min(samples.length - 1, Math.floor(p * samples.length))]! * 1000;
    out({ roundTrips: samples.length, p50us: q(0.5), p99us: q(0.99) });
  });
}

({ bulk, down, rate, latency })[spec.kind]();
