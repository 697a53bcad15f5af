/**
 * The parts of an API object the agent keeps: what the proxier reads
 * (proxier/raw.ts, service-ports.ts, endpoint-slices.ts, node-info.ts) and
 * what the informers and the tracker need (name, namespace, uid,
 * resourceVersion). Everything else an API server sends is dropped as the
 * object arrives, before an informer or the tracker holds it: managedFields
 * (often the largest part of an object), owner references, the
 * last-applied-configuration annotation (a second copy of the object),
 * EndpointSlice targetRefs, and a Node's status but for its addresses
 * (images, conditions, capacity, nodeInfo). At 10,000 Services these are
 * most of what the informers would hold.
 *
 * Upstream's informers keep whole objects; kube-proxy reads the same fields
 * we keep (pkg/proxy/servicechangetracker.go, endpointslicecache.go,
 * node.go), so dropping the rest changes no rule. Updates that touch only
 * dropped fields become equal to what the tracker holds and are not passed
 * on (object-tracker.ts drops updates without a change).
 *
 * Pure; always returns a fresh object (no part shared with the input).
 */
import type { ObjectKind } from './events.ts';

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A deep copy of plain JSON. */
const copy = <T>(v: T): T => (v === undefined ? v : (JSON.parse(JSON.stringify(v)) as T));

const METADATA = ['name', 'namespace', 'uid', 'resourceVersion', 'labels', 'annotations', 'deletionTimestamp'] as const;
const LAST_APPLIED = 'kubectl.kubernetes.io/last-applied-configuration';
/** Of an EndpointSlice endpoint: what endpoint-slices.ts and topology.ts read. */
const ENDPOINT = ['addresses', 'conditions', 'nodeName', 'zone', 'hints'] as const;

function pick(obj: Json, keys: readonly string[]): Json {
  const out: Json = {};
  for (const k of keys) if (obj[k] !== undefined) out[k] = copy(obj[k]);
  return out;
}

function metadata(md: unknown): Json {
  if (!isObject(md)) return {};
  const out = pick(md, METADATA);
  if (isObject(out['annotations']) && LAST_APPLIED in out['annotations']) {
    const { [LAST_APPLIED]: _, ...rest } = out['annotations'];
    out['annotations'] = rest;
  }
  return out;
}

/**
 * The retained part of `obj` (an object of `kind` as the API server sent it).
 * Fields of unexpected type are kept as they are, for the proxier to report.
 */
export function retainedFields(kind: ObjectKind, obj: Json): Json {
  const out: Json = {};
  if (obj['kind'] !== undefined) out['kind'] = obj['kind'];
  if (obj['apiVersion'] !== undefined) out['apiVersion'] = obj['apiVersion'];
  out['metadata'] = metadata(obj['metadata']);
  switch (kind) {
    case 'Service':
      return { ...out, ...pick(obj, ['spec', 'status']) };
    case 'EndpointSlice': {
      const endpoints = obj['endpoints'];
      return {
        ...out,
        ...pick(obj, ['addressType', 'ports']),
        ...(endpoints === undefined
          ? {}
          : { endpoints: Array.isArray(endpoints) ? endpoints.map((e) => (isObject(e) ? pick(e, ENDPOINT) : copy(e))) : copy(endpoints) }),
      };
    }
    case 'Node': {
      const status = obj['status'];
      return {
        ...out,
        ...pick(obj, ['spec']),
        ...(status === undefined ? {} : { status: isObject(status) ? pick(status, ['addresses']) : copy(status) }),
      };
    }
  }
}
