import { request, type IncomingHttpHeaders } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { listen, metricsHandler, type MetricsServerOptions, type RunningServer } from './http-servers.ts';
import { createMetrics } from './metrics.ts';
import { parseAccept } from './zpages-negotiate.ts';

/** A request as curl (or another client) makes it, through node:http, which adds no Accept or User-Agent of its own. */
function curl(
  url: string,
  headers: Record<string, string> = { 'User-Agent': 'curl/8.5.0', Accept: '*/*' },
): Promise<{ status: number; headers: IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

const WARNING =
  'Warning: This endpoint is not meant to be machine parseable, has no formatting compatibility guarantees and is for debugging purposes only.';
// Mon Jan 5 03:04:05 UTC 2026, and 1 h 2 min 3.9 s later.
const START = Date.UTC(2026, 0, 5, 3, 4, 5) / 1000;
const NOW = (START + 3723.9) * 1000;
const FLAGS = { 'proxy-mode': 'nftables', 'nodeport-addresses': '[]', 'bind-address-hard-fail': 'false', 'kube-api-qps': '5' };
const STATUSZ = { startUnix: START, binaryVersion: '0.1.0', emulationVersion: '1.36', nodeVersion: 'v24.1.0' };

describe('the z-pages on the metrics server (k8s.io/apiserver flagz, statusz)', () => {
  let servers: RunningServer[] = [];
  afterEach(async () => {
    await Promise.all(servers.map((s) => s.close()));
    servers = [];
  });

  async function serve(options: MetricsServerOptions, random = () => 0.3): Promise<string> {
    const s = await listen(
      '127.0.0.1',
      0,
      metricsHandler(createMetrics(undefined, { processMetrics: false }), 'nftables', {
        configz: { kind: 'KubeProxyConfiguration' },
        debug: () => false,
        ...options,
        zpages: { now: () => NOW, random, timeZone: 'UTC', ...options.zpages },
      }),
    );
    servers.push(s);
    return s.url;
  }

  it("GET /flagz as curl sees it (handleFlagz -> writePlainTextResponse, flagzTextSerializer.Encode): header, warning, every flag sorted by name; the first answer's separator kept (cachedPlainTextResponse)", async () => {
    let pick = 0.3; // ': '
    const url = await serve({ flagz: FLAGS }, () => pick);
    const r = await curl(`${url}/flagz`);
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('text/plain; charset=utf-8');
    expect(r.body).toBe(
      `\nkube-proxy flagz\n${WARNING}\nbind-address-hard-fail: false\nkube-api-qps: 5\nnodeport-addresses: []\nproxy-mode: nftables\n`,
    );
    pick = 0.9;
    // No Accept at all is text too (handleFlagz: a blank Accept skips the negotiation).
    expect((await curl(`${url}/flagz`, {})).body).toBe(r.body);
  });

  it('GET /statusz as curl sees it (statuszTextSerializer.Encode): Started in time.UnixDate, Up, the runtime and binary versions, Emulation version, Paths (aggregatePaths of the listed paths); a separator picked per answer from delimiters', async () => {
    const picks = [0, 0.3, 0.6, 0.9];
    const url = await serve({ flagz: FLAGS, statusz: STATUSZ }, () => picks.shift()!);
    const bodies = [];
    for (let i = 0; i < 4; i++) bodies.push((await curl(`${url}/statusz`)).body);
    expect(bodies[0]).toBe(
      `\nkube-proxy statusz\n${WARNING}\n\nStarted: Mon Jan  5 03:04:05 UTC 2026\nUp: 1 hr 02 min 03 sec\nNode version: v24.1.0\n` +
        'Binary version: 0.1.0\nEmulation version: 1.36\nPaths: /configz /debug /flagz /healthz /metrics /proxyMode\n',
    );
    expect(bodies.map((b) => /\nUp(.*?) 1 hr/.exec(b!)![1])).toEqual([':', ': ', '=', ' ']);
    // Without flagz (ComponentFlagz off) its path is not listed; the time in the process's zone, as Go's time.Local.
    const other = await serve({ statusz: STATUSZ, zpages: { timeZone: 'America/New_York' } }, () => 0);
    const body = (await curl(`${other}/statusz`)).body;
    expect(body).toContain('Started: Sun Jan  4 22:04:05 EST 2026\n');
    expect(body).toContain('Paths: /configz /debug /healthz /metrics /proxyMode\n');
  });

  it('without their gates (no flagz reader, no statusz.Install) both are 404 as any unknown path', async () => {
    const url = await serve({});
    for (const path of ['/flagz', '/statusz']) {
      const r = await curl(`${url}${path}`);
      expect([r.status, r.body]).toEqual([404, '404 page not found\n']);
    }
  });

  it('structured JSON when the Accept names the kind (NegotiateOutputMediaType with Flagz/StatuszEndpointRestrictions; WriteObjectNegotiated): indented for curl (isPrettyPrint), compact with a newline otherwise, v1alpha1 with the deprecation Warning', async () => {
    const url = await serve({ flagz: FLAGS, statusz: STATUSZ });
    const asFlagz = 'application/json;as=Flagz;v=v1beta1;g=config.k8s.io';
    const pretty = await curl(`${url}/flagz`, { 'User-Agent': 'curl/8.5.0', Accept: asFlagz });
    expect(pretty.status).toBe(200);
    expect(pretty.headers['content-type']).toBe('application/json;g=config.k8s.io;v=v1beta1;as=Flagz');
    expect(pretty.headers['warning']).toBeUndefined();
    expect(pretty.body).toBe(
      '{\n  "kind": "Flagz",\n  "apiVersion": "config.k8s.io/v1beta1",\n  "metadata": {\n    "name": "kube-proxy"\n  },\n  "flags": {\n' +
        '    "bind-address-hard-fail": "false",\n    "kube-api-qps": "5",\n    "nodeport-addresses": "[]",\n    "proxy-mode": "nftables"\n  }\n}',
    );
    const compact = await curl(`${url}/statusz`, {
      'User-Agent': 'Go-http-client/1.1',
      Accept: 'application/json;g=config.k8s.io;v=v1alpha1;as=Statusz',
    });
    expect(compact.headers['content-type']).toBe('application/json;g=config.k8s.io;v=v1alpha1;as=Statusz');
    expect(compact.headers['warning']).toBe('299 - "This version of the statusz endpoint is deprecated. Please use a newer version."');
    expect(compact.body).toBe(
      '{"kind":"Statusz","apiVersion":"config.k8s.io/v1alpha1","metadata":{"name":"kube-proxy"},"startTime":"2026-01-05T03:04:05Z",' +
        '"uptimeSeconds":3723,"goVersion":"","binaryVersion":"0.1.0","emulationVersion":"1.36",' +
        '"paths":["/configz","/debug","/flagz","/healthz","/metrics","/proxyMode"]}\n',
    );
    // ?pretty=false overrides the User-Agent; ;pretty=1 in the media type asks for it.
    expect((await curl(`${url}/flagz?pretty=false`, { 'User-Agent': 'curl/8.5.0', Accept: asFlagz })).body).toMatch(/^\{"kind":"Flagz".*\}\n$/);
    expect((await curl(`${url}/flagz`, { Accept: `${asFlagz};pretty=1` })).body).toMatch(/^\{\n {2}"kind": "Flagz"/);
  });

  it("structured YAML (JSONToYAML: keys sorted, strings quoted where go-yaml's resolve would read another type)", async () => {
    const url = await serve({ flagz: FLAGS, statusz: STATUSZ });
    const statusz = await curl(`${url}/statusz`, { Accept: 'application/yaml;as=Statusz;g=config.k8s.io;v=v1beta1' });
    expect(statusz.headers['content-type']).toBe('application/yaml;g=config.k8s.io;v=v1beta1;as=Statusz');
    expect(statusz.body).toBe(
      'apiVersion: config.k8s.io/v1beta1\nbinaryVersion: 0.1.0\nemulationVersion: "1.36"\ngoVersion: ""\nkind: Statusz\nmetadata:\n  name: kube-proxy\n' +
        'paths:\n- /configz\n- /debug\n- /flagz\n- /healthz\n- /metrics\n- /proxyMode\nstartTime: "2026-01-05T03:04:05Z"\nuptimeSeconds: 3723\n',
    );
    const flagz = await curl(`${url}/flagz`, { Accept: 'application/yaml;as=Flagz;g=config.k8s.io;v=v1beta1' });
    expect(flagz.body).toBe(
      'apiVersion: config.k8s.io/v1beta1\nflags:\n  bind-address-hard-fail: "false"\n  kube-api-qps: "5"\n  nodeport-addresses: \'[]\'\n' +
        '  proxy-mode: nftables\nkind: Flagz\nmetadata:\n  name: kube-proxy\n',
    );
  });

  it('406 when nothing acceptable (errNotAcceptable through ErrorNegotiated): the Status in the JSON or YAML the Accept takes unconverted, else WriteRawJSON', async () => {
    const url = await serve({ flagz: FLAGS, statusz: STATUSZ });
    const message = 'only the following media types are accepted: application/json, application/yaml, text/plain';
    const status = { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason: 'NotAcceptable', code: 406 };
    // JSON without a kind: refused by the page, taken by DefaultEndpointRestrictions: the JSON serializer's compact form.
    const json = await curl(`${url}/flagz`, { 'User-Agent': 'Go-http-client/1.1', Accept: 'application/json' });
    expect([json.status, json.headers['content-type'], json.body]).toEqual([406, 'application/json', `${JSON.stringify(status)}\n`]);
    // Neither takes it (a wrong version, another kind, XML): WriteRawJSON's MarshalIndent, whatever the User-Agent.
    for (const accept of [
      'application/json;as=Flagz;g=config.k8s.io;v=v1',
      'application/json;as=Statusz;g=config.k8s.io;v=v1beta1',
      'application/xml',
      'some header',
    ]) {
      const r = await curl(`${url}/flagz`, { 'User-Agent': 'Go-http-client/1.1', Accept: accept });
      expect([r.status, r.headers['content-type'], r.body]).toEqual([406, 'application/json', JSON.stringify(status, null, 2)]);
    }
    // YAML: go-yaml folds the long message past column 80.
    const yaml = await curl(`${url}/statusz`, { Accept: 'application/yaml' });
    expect([yaml.status, yaml.headers['content-type']]).toEqual([406, 'application/yaml']);
    expect(yaml.body).toBe(
      `apiVersion: v1\ncode: 406\nkind: Status\nmessage: 'only the following media types are accepted: application/json, application/yaml,\n  text/plain'\n` +
        'metadata: {}\nreason: NotAcceptable\nstatus: Failure\n',
    );
  });

  it('what browsers and tools send negotiates to text (NegotiateMediaTypeOptions: the first clause a serializer matches and the page allows)', async () => {
    const url = await serve({ flagz: FLAGS, statusz: STATUSZ });
    for (const accept of [
      'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8',
      'application/json, text/plain',
      'text/*',
      'text/plain; charset=utf-8',
      // goautoneg keeps a q=0 clause, and the negotiation takes it.
      'text/plain;q=0',
    ]) {
      const r = await curl(`${url}/statusz`, { Accept: accept });
      expect([accept, r.status, r.headers['content-type']]).toEqual([accept, 200, 'text/plain; charset=utf-8']);
    }
    // A higher q wins over the order written.
    const r = await curl(`${url}/flagz`, { Accept: 'text/plain;q=0.5, application/json;as=Flagz;g=config.k8s.io;v=v1beta1' });
    expect(r.headers['content-type']).toBe('application/json;g=config.k8s.io;v=v1beta1;as=Flagz');
  });
});

describe('parseAccept (goautoneg.ParseAccept)', () => {
  it('drops clauses without a subtype, takes q out of the parameters (0 when unreadable) and sorts with its Less, where a concrete type or subtype goes before a wildcard whatever their q', () => {
    expect(parseAccept('text, */*;q=0.1, a/b/c, application/*;x=1, text/plain;q=bad').map((c) => [c.type, c.subType, c.q, [...c.params]])).toEqual([
      ['text', 'plain', 0, []],
      ['application', '*', 1, [['x', '1']]],
      ['*', '*', Math.fround(0.1), []],
    ]);
  });
});
