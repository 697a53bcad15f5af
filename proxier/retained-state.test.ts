/**
 * What the proxier keeps per service port between syncs: its ServicePortState
 * (the service port, its endpoints, their selection), measured on 2,000
 * services of one port with 5 endpoints each, the raw objects already in the
 * heap. At 10,000 service ports every 100 bytes here is 1 MB of the agent's
 * heap.
 */
import { describe, expect, it } from 'vitest';
import { measureInChild } from '../test/retention-cluster.ts';

describe('proxier memory per service port', () => {
  it('keeps a 5-endpoint service port state in under 1.3 KB: objects built whole, no spare list room (was ~1.5-2.6 KB)', async () => {
    const { ports, perPort } = await measureInChild<{ ports: number; perPort: number }>(
      2000,
      [],
      `const before = heap();
const snapshot = buildSnapshot();
const after = heap();
console.log(JSON.stringify({ ports: snapshot.services.length, perPort: (after - before) / snapshot.services.length }));`,
    );
    expect(ports).toBe(2000);
    // Measured on Node 24: ~1,530-2,600 bytes when endpoints and service ports were spread into literals (their
    // later fields in property arrays of their own), the empty address lists one per port and the cluster list a
    // grown copy of the endpoints; ~1,100 since.
    expect(perPort).toBeLessThan(1300);
  }, 60_000);
});
