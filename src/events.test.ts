/**
 * Events through client-node's HTTP library to the fake API server:
 * the body upstream's recorder would send, and failures that never reach the
 * proxy.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeApiServer, kubeConfigFor } from '../test/fake-apiserver.ts';
import { apiEventRecorder, eventBody, eventNote, microTime, type EventSpec } from './events.ts';
import { failureMessage, kubeRequest } from './sources/kube-request.ts';
import { silentLogger } from '../proxier/log.ts';

let api: FakeApiServer;
beforeAll(async () => {
  api = await FakeApiServer.start();
});
afterAll(async () => {
  await api.close();
});

/** The event upstream records on its Node when it starts. */
const STARTING: EventSpec = {
  regarding: { kind: 'Node', apiVersion: 'v1', namespace: '', name: 'node-1' },
  type: 'Normal',
  reason: 'Starting',
  action: 'StartKubeProxy',
  note: '',
};

/** Records one event through the fake API server, at the time given, and waits until it was sent. */
async function recordAt(now: string, e: EventSpec): Promise<void> {
  const rec = apiEventRecorder(kubeConfigFor(api), { nodeName: 'node-1', logger: silentLogger(), now: () => new Date(now) });
  rec.record(e);
  await rec.flush();
}

describe('events', () => {
  it('a Service event goes to its namespace with upstream reason, action and reporter', async () => {
    await recordAt('2026-11-23T00:00:00Z', {
      regarding: { kind: 'Service', apiVersion: 'v1', namespace: 'ns1', name: 'lb' },
      type: 'Warning',
      reason: 'FailedToStartServiceHealthcheck',
      action: 'Listen',
      note: 'port 30001 in use',
    });
    expect(api.events.at(-1)).toMatchObject({
      metadata: { namespace: 'ns1' },
      reason: 'FailedToStartServiceHealthcheck',
      action: 'Listen',
      type: 'Warning',
      note: 'port 30001 in use',
      reportingController: 'kube-proxy',
      reportingInstance: 'kube-proxy-node-1',
      regarding: { kind: 'Service', namespace: 'ns1', name: 'lb' },
    });
    expect(String((api.events.at(-1)!['metadata'] as { name: string }).name)).toMatch(/^lb\.[0-9a-f]+$/);
  });

  it('eventTime is written as metav1.MicroTime.MarshalJSON writes it (RFC3339Micro), which the API server accepts', async () => {
    expect(microTime(new Date('2026-11-23T01:02:03.456Z'))).toBe('2026-11-23T01:02:03.456000Z');
    const before = api.events.length;
    await recordAt('2026-11-23T01:02:03.456Z', STARTING);
    expect(api.events.length).toBe(before + 1);
    expect(api.events.at(-1)!['eventTime']).toBe('2026-11-23T01:02:03.456000Z');
  });

  it("metav1.MicroTime.UnmarshalJSON: the fake API server refuses the millisecond eventTime client-node's EventsV1Api sends, as a real one does", async () => {
    const kc = kubeConfigFor(api);
    const body = {
      ...eventBody(STARTING, { nodeName: 'node-1', now: new Date(0) }),
      eventTime: new Date(0),
    };
    const r = await kubeRequest(kc, {
      method: 'POST',
      url: new URL(`${kc.getCurrentCluster()!.server}/apis/events.k8s.io/v1/namespaces/default/events`),
      body,
    });
    expect(r.status).toBe(400);
    expect(failureMessage(r.text).message).toContain('parsing time "1970-01-01T00:00:00.000Z" as "2006-01-02T15:04:05.000000Z07:00"');
  });

  it('a Node event (cluster-scoped) goes to "default" and its reference carries no namespace', () => {
    const b = eventBody(STARTING, { nodeName: 'node-1', now: new Date(0) });
    expect(b.metadata.namespace).toBe('default');
    expect(b.regarding).toEqual({ kind: 'Node', apiVersion: 'v1', name: 'node-1' });
  });

  it('ValidateEventCreate (events.k8s.io/v1): a note over 1024 bytes is cut on a character boundary, marked, not refused', () => {
    const long = `${'x'.repeat(1020)}é${'y'.repeat(600)}`;
    const note = eventBody({ ...STARTING, note: long }, { nodeName: 'node-1', now: new Date(0) }).note;
    expect(Buffer.byteLength(note)).toBeLessThanOrEqual(1024);
    expect(note).toBe(`${'x'.repeat(1020)}...`);
    expect(eventNote('short')).toBe('short');
  });

  it('an API server that refuses events changes nothing for the caller', async () => {
    const rec = apiEventRecorder(kubeConfigFor({ url: 'http://127.0.0.1:1' }), { nodeName: 'node-1', logger: silentLogger() });
    rec.record(STARTING);
    await expect(rec.flush()).resolves.toBeUndefined();
  });
});
