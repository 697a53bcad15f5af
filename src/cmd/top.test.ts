import { describe, expect, it, vi } from 'vitest';
import { ManualClock } from '../../proxier/clock.ts';
import { silentLogger } from '../../proxier/log.ts';
import { createServer, type RequestListener } from 'node:http';
import type { AddressInfo } from 'node:net';
import { agentTrafficUrl, BUSY_TRIES, redraw, topCommand } from './top.ts';

const io = () => {
  const err: string[] = [];
  return { err, io: { stdout: () => undefined, stderr: (t: string) => void err.push(t), makeLogger: () => silentLogger() } };
};

/** Runs `test` against an HTTP server on a loopback port ("127.0.0.1:port"), closed afterwards. */
async function withServer(handler: RequestListener, test: (at: string) => Promise<void>): Promise<void> {
  const server = createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    await test(`127.0.0.1:${(server.address() as AddressInfo).port}`);
  } finally {
    await new Promise((r) => server.close(r));
  }
}

describe('kube-proxy-ts top: arguments', () => {
  it.each([
    [['--interval', '10ms'], /--interval must be at least 100ms/],
    [['--iterations', '-1'], /--iterations: must be greater than or equal to 0/],
    [['--ip-family', 'IPv5'], /--ip-family/],
    [['--bogus'], /unknown flag: --bogus/],
  ])('refuses %j with exit 2 before reading anything', async (argv, message) => {
    const t = io();
    expect(await topCommand(argv, t.io)).toBe(2);
    expect(t.err.join('')).toMatch(message);
  });

  it('--mode nftables: asks the agent at its --metrics-bind-address (a wildcard on loopback); says when it cannot', async () => {
    expect(agentTrafficUrl('127.0.0.1:10249', 'IPv4')).toBe('http://127.0.0.1:10249/debug/traffic?format=json&family=IPv4');
    expect(agentTrafficUrl('0.0.0.0:10249', 'IPv6')).toBe('http://127.0.0.1:10249/debug/traffic?format=json&family=IPv6');
    expect(agentTrafficUrl('[::]:10249', null)).toBe('http://[::1]:10249/debug/traffic?format=json');
    expect(agentTrafficUrl('192.168.0.2:9100', 'IPv4')).toBe('http://192.168.0.2:9100/debug/traffic?format=json&family=IPv4');
    expect(agentTrafficUrl('', 'IPv4')).toEqual({ error: expect.stringMatching(/^--metrics-bind-address is empty, so the agent serves no metrics/) });
    expect(agentTrafficUrl('127.0.0.1:0', 'IPv4')).toEqual({ error: expect.stringMatching(/names no port to reach/) });

    // Nothing listens on a port just freed.
    const server = createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    await new Promise((r) => server.close(r));
    const t = io();
    expect(await topCommand(['--mode', 'nftables', '--metrics-bind-address', `127.0.0.1:${port}`, '--iterations', '1'], t.io)).toBe(1);
    expect(t.err.join('')).toMatch(
      new RegExp(
        `^error: cannot reach the agent's metrics server at 127\\.0\\.0\\.1:${port}: .*ECONNREFUSED.* \\(top --mode nftables reads the counters through the agent`,
      ),
    );
    const off = io();
    expect(await topCommand(['--mode', 'nftables', '--metrics-bind-address', '', '--iterations', '1'], off.io)).toBe(1);
    expect(off.err.join('')).toMatch(/^error: --metrics-bind-address is empty/);
  });

  it("--mode nftables without --ip-family shows the agent's primary family (IPv6 first here); with it, asks for that one", async () => {
    const urls: string[] = [];
    let packets = 0;
    const handler: RequestListener = (req, res) => {
      urls.push(req.url!);
      packets += 4;
      const endpoints = [
        { service: 'ns1/web:http', endpoint: '10.244.1.5:8080', packets: 100, bytes: 6000 },
        { service: 'ns1/web:http', endpoint: '[fd00:10:244::5]:8080', packets, bytes: packets * 80 },
      ];
      res.writeHead(200, { 'Content-Type': 'application/json' }).end(
        JSON.stringify({
          mode: 'nftables',
          families: ['IPv6', 'IPv4'],
          counting: true,
          readNow: true,
          // An agent of this version names what it could not read; without the family, here; the page with it lacks the
          // field, as an older agent's would.
          ...(req.url!.includes('family=') ? {} : { failures: ['IPv6: nft failed:\nbusy'] }),
          endpoints,
        }),
      );
    };
    await withServer(handler, async (at) => {
      const out: string[] = [];
      const argv = ['--mode', 'nftables', '--metrics-bind-address', at, '--interval', '100ms', '--iterations', '1'];
      expect(await topCommand(argv, { ...io().io, stdout: (t: string) => void out.push(t) })).toBe(0);
      expect(urls).toEqual(['/debug/traffic?format=json', '/debug/traffic?format=json']);
      expect(out.join('')).toContain(`| IPv6 table ip6 kube-proxy via ${at} |`);
      expect(out.join('')).toMatch(/^ {2}\[fd00:10:244::5\]:8080 +\d+\.\d +\S+ +100% +8 /m);
      expect(out.join('')).not.toContain('10.244.1.5');
      expect(out.join('')).toContain(
        "count them\nthe agent could not read the counters now (these are its last reading's): IPv6: nft failed: busy\n\nSERVICE",
      );

      urls.length = 0;
      out.length = 0;
      expect(await topCommand([...argv, '--ip-family', 'IPv4'], { ...io().io, stdout: (t: string) => void out.push(t) })).toBe(0);
      expect(urls).toEqual(['/debug/traffic?format=json&family=IPv4', '/debug/traffic?format=json&family=IPv4']);
      expect(out.join('')).toMatch(/^ {2}10\.244\.1\.5:8080 +0\.0 +0 +- +100 /m);
      expect(out.join('')).not.toContain('could not read');
    });
  });

  it('--mode nftables: an agent answering 429 (its /debug/traffic bucket empty) is asked again after its Retry-After; top gives up after BUSY_TRIES, and stops at once when stopped during a wait', async () => {
    const page = JSON.stringify({ mode: 'nftables', families: ['IPv4'], counting: true, readNow: true, failures: [], endpoints: [] });
    /** How many requests in a row get 429 before one gets the page (Infinity: all). */
    let busy = 0;
    let retryAfter = '1';
    const asked: number[] = [];
    const handler: RequestListener = (_req, res) => {
      asked.push(Date.now());
      if (busy-- > 0)
        res.writeHead(429, { 'Retry-After': retryAfter }).end('too many /debug/traffic requests: at most 10 at once, then 10 per second\n');
      else res.writeHead(200, { 'Content-Type': 'application/json' }).end(page);
    };
    await withServer(handler, async (at) => {
      const argv = ['--mode', 'nftables', '--metrics-bind-address', at, '--interval', '100ms', '--iterations', '1'];
      // Two 429s, then the page: one frame, the waits as long as the agent asked.
      busy = 2;
      const out: string[] = [];
      const t = io();
      expect(await topCommand(argv, { ...t.io, stdout: (s: string) => void out.push(s) })).toBe(0);
      expect(t.err).toEqual([]);
      expect(out.join('')).toContain(`IPv4 table ip kube-proxy via ${at}`);
      expect(asked).toHaveLength(4);
      expect(asked[2]! - asked[0]!).toBeGreaterThanOrEqual(1900);

      // Always 429: top names the answer and how often it asked.
      busy = Infinity;
      asked.length = 0;
      const gave = io();
      expect(await topCommand(argv, gave.io)).toBe(1);
      expect(asked).toHaveLength(BUSY_TRIES);
      expect(gave.err.join('')).toBe(
        `error: the agent at ${at} answered /debug/traffic with 429 (${BUSY_TRIES} times in a row, each time after the wait it asked for): too many /debug/traffic requests: at most 10 at once, then 10 per second\n`,
      );

      // Stopped (Ctrl-C) while waiting for a busy agent, then between two frames: top ends at once without an error,
      // and leaves no timer behind (on top's clock, here one moved by hand).
      for (const [when, endless] of [
        ['during a Retry-After', Infinity],
        ['between frames', 0],
      ] as const) {
        busy = endless;
        retryAfter = '5';
        asked.length = 0;
        const clock = new ManualClock();
        let stop!: (signal: string) => void;
        const stopped = new Promise<string>((r) => (stop = r));
        const t = io();
        const forever = ['--mode', 'nftables', '--metrics-bind-address', at, '--interval', '2s'];
        const running = topCommand(forever, { ...t.io, clock, stopSignal: () => stopped });
        await vi.waitFor(() => expect(clock.pending(), when).toBe(1));
        stop('SIGINT');
        expect(await running, when).toBe(0);
        expect(clock.pending(), when).toBe(0);
        expect(asked, when).toHaveLength(1);
        expect(t.err, when).toEqual([]);
      }
    });
  }, 20_000);

  it("--mode nftables: says so when the address answers something other than the agent's page (another web server, a proxy)", async () => {
    let body = '';
    let status = 200;
    const handler: RequestListener = (_req, res) => void res.writeHead(status, { 'Content-Type': 'text/html' }).end(body);
    await withServer(handler, async (at) => {
      for (const [answer, why] of [
        ['<!DOCTYPE html>\n<html><head><title>Welcome to nginx!</title></head><body>hello</body></html>', /Unexpected token/],
        ['{"status": "ok"}', /no "endpoints" list/],
        ['null', /no "endpoints" list/],
      ] as const) {
        body = answer;
        const t = io();
        expect(await topCommand(['--mode', 'nftables', '--metrics-bind-address', at, '--iterations', '1'], t.io)).toBe(1);
        const err = t.err.join('');
        expect(err).toMatch(
          new RegExp(`^error: the agent at ${at.replaceAll('.', '\\.')} answered /debug/traffic with something other than its JSON page \\(`),
        );
        expect(err).toMatch(why);
        expect(err).toContain(`"${answer.replaceAll('\n', ' ').slice(0, 60)}${answer.length > 60 ? '...' : ''}"`);
        expect(err).toMatch(/is --metrics-bind-address the agent's\?\n$/);
      }
      // Another server's error page, on one line and cut.
      status = 404;
      body = `<!DOCTYPE HTML>\n<html lang="en">\n    <head>\n        <title>Error response</title>\n${'    <p>Nothing matches the given URI.</p>\n'.repeat(20)}</html>`;
      const t = io();
      expect(await topCommand(['--mode', 'nftables', '--metrics-bind-address', at, '--iterations', '1'], t.io)).toBe(1);
      expect(t.err.join('')).toMatch(
        new RegExp(
          `^error: the agent at ${at.replaceAll('.', '\\.')} answered /debug/traffic with 404: <!DOCTYPE HTML> <html lang="en"> <head> <title>Error response</title> <p>.{200,300}\\.\\.\\.; is --metrics-bind-address the agent's\\?\n$`,
        ),
      );
    });
  });

  it('redraws from the top left, clearing each line and the rest of the screen', () => {
    expect(redraw(['a', 'bb'])).toBe('\x1b[Ha\x1b[K\nbb\x1b[K\n\x1b[J');
  });
});
