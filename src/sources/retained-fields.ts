/**
 * The parts of an API object the agent keeps: what the proxier reads
 * (proxier/raw.ts, service-ports.ts, endpoint-slices.ts, node-info.ts) and
 * what the informers and the tracker need (name, namespace, uid,
 * resourceVersion). Everything else an API server sends is dropped as the
 * object arrives, before an informer or the tracker holds it: managedFields
 * (often the largest part of an object), owner references, the
 * last-applied-configuration annotation (a second copy of the object),
 * EndpointSlice targetRefs, and a Node's status but for its addresses
 * (images, conditions, capacity, nodeInfo), a ServiceCIDR's status. At
 * 10,000 Services these are most of what the informers would hold.
 *
 * Upstream's informers keep whole objects; kube-proxy reads the same fields
 * we keep (pkg/proxy/servicechangetracker.go, endpointslicecache.go,
 * node.go), so dropping the rest changes no rule. Updates that touch only
 * dropped fields become equal to what the tracker holds and are not passed
 * on (object-tracker.ts drops updates without a change).
 *
 * Always returns a fresh object (no part shared with the input); repeated
 * strings and endpoint conditions are shared between the objects it returns
 * (the conditions frozen): nothing may change what it returned.
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

/** The keys of `obj` that are set (not copied: retainedFields copies the whole result once). */
function pick(obj: Json, keys: readonly string[]): Json {
  const out: Json = {};
  for (const k of keys) if (obj[k] !== undefined) out[k] = obj[k];
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
  // One JSON copy of the picked fields: JSON.parse builds each object with its fields inside it, where objects
  // built field by field keep the fields past the fourth in a separate property array.
  return shareRepeated(kind, copy(picked(kind, obj)));
}

function picked(kind: ObjectKind, obj: Json): Json {
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
          : { endpoints: Array.isArray(endpoints) ? endpoints.map((e) => (isObject(e) ? pick(e, ENDPOINT) : e)) : endpoints }),
      };
    }
    case 'Node': {
      const status = obj['status'];
      return {
        ...out,
        ...pick(obj, ['spec']),
        ...(status === undefined ? {} : { status: isObject(status) ? pick(status, ['addresses']) : status }),
      };
    }
    case 'ServiceCIDR': {
      // spec.cidrs (proxier/service-cidrs.ts); the status conditions are not read, as upstream.
      const spec = obj['spec'];
      return { ...out, ...(spec === undefined ? {} : { spec: isObject(spec) ? pick(spec, ['cidrs']) : spec }) };
    }
  }
}

/**
 * Strings that most objects repeat (apiVersion, kind, label values such as
 * the slice controller's name, address types, port names and protocols, node
 * names and zones) are kept once: a JSON copy holds a string of its own per
 * object. Bounded, so that unusual clusters cannot grow it without end.
 */
const SHARED_STRINGS_MAX = 4096;
const sharedStrings = new Map<string, string>();
function shared(v: unknown): unknown {
  if (typeof v !== 'string') return v;
  const known = sharedStrings.get(v);
  if (known !== undefined) return known;
  if (sharedStrings.size < SHARED_STRINGS_MAX) sharedStrings.set(v, v);
  return v;
}

/**
 * An endpoint's conditions, one frozen object per combination: nearly every
 * endpoint has the same {ready, serving, terminating} (2.4 MB at 50,000
 * endpoints). Only objects of these three booleans, all present, are shared.
 */
const sharedConditions = new Map<number, Json>();
function conditionsOf(c: unknown): unknown {
  if (!isObject(c)) return c;
  const { ready, serving, terminating } = c;
  if (typeof ready !== 'boolean' || typeof serving !== 'boolean' || typeof terminating !== 'boolean' || Object.keys(c).length !== 3) return c;
  const k = (ready ? 1 : 0) | (serving ? 2 : 0) | (terminating ? 4 : 0);
  let known = sharedConditions.get(k);
  if (!known) sharedConditions.set(k, (known = Object.freeze({ ready, serving, terminating })));
  return known;
}

/** Replaces repeated strings and conditions of a fresh copy by shared ones, in place (no field added or removed). */
function shareRepeated(kind: ObjectKind, o: Json): Json {
  if ('kind' in o) o['kind'] = shared(o['kind']);
  if ('apiVersion' in o) o['apiVersion'] = shared(o['apiVersion']);
  const labels = isObject(o['metadata']) ? o['metadata']['labels'] : undefined;
  if (isObject(labels)) for (const k of Object.keys(labels)) labels[k] = shared(labels[k]);
  if (kind !== 'EndpointSlice') return o;
  if ('addressType' in o) o['addressType'] = shared(o['addressType']);
  const each = (list: unknown, f: (item: Json) => void) => {
    if (Array.isArray(list)) for (const item of list) if (isObject(item)) f(item);
  };
  each(o['ports'], (p) => {
    if ('name' in p) p['name'] = shared(p['name']);
    if ('protocol' in p) p['protocol'] = shared(p['protocol']);
  });
  each(o['endpoints'], (e) => {
    if ('conditions' in e) e['conditions'] = conditionsOf(e['conditions']);
    if ('nodeName' in e) e['nodeName'] = shared(e['nodeName']);
    if ('zone' in e) e['zone'] = shared(e['zone']);
  });
  return o;
}
