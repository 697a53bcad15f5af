/**
 * Events through the real client-node API client to the fake API server:
 * the body upstream's recorder would send, and failures that never reach the
 * proxy.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeApiServer, kubeConfigFor } from '../test/fake-apiserver.ts';
import { apiEventRecorder, eventBody } from './events.ts';
import { silentLogger } from '../proxier/log.ts';

let api: FakeApiServer;
beforeAll(async () => {
  api = await FakeApiServer.start();
});
afterAll(async () => {
  await api.close();
});

describe('events', () => {
  it('a Service event goes to its namespace with upstream reason, action and reporter', async () => {
    const rec = apiEventRecorder(kubeConfigFor(api), { nodeName: 'node-1', logger: silentLogger(), now: () => new Date('2026-11-23T00:00:00Z') });
    rec.record({
      regarding: { kind: 'Service', apiVersion: 'v1', namespace: 'ns1', name: 'lb' },
      type: 'Warning',
      reason: 'FailedToStartServiceHealthcheck',
      action: 'Listen',
      note: 'port 30001 in use',
    });
    await rec.flush();
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

  it('a Node event (cluster-scoped) goes to "default" and its reference carries no namespace', () => {
    const b = eventBody(
      {
        regarding: { kind: 'Node', apiVersion: 'v1', namespace: '', name: 'node-1' },
        type: 'Normal',
        reason: 'Starting',
        action: 'StartKubeProxy',
        note: '',
      },
      { nodeName: 'node-1', now: new Date(0) },
    );
    expect(b.metadata.namespace).toBe('default');
    expect(b.regarding).toEqual({ kind: 'Node', apiVersion: 'v1', name: 'node-1' });
  });

  it('an API server that refuses events changes nothing for the caller', async () => {
    const rec = apiEventRecorder(kubeConfigFor({ url: 'http://127.0.0.1:1' }), { nodeName: 'node-1', logger: silentLogger() });
    rec.record({
      regarding: { kind: 'Node', apiVersion: 'v1', namespace: '', name: 'node-1' },
      type: 'Normal',
      reason: 'Starting',
      action: 'StartKubeProxy',
      note: '',
    });
    await expect(rec.flush()).resolves.toBeUndefined();
  });
});
