/**
 * Reading raw Kubernetes objects, as informers and files deliver them
 * (unknown JSON), in one place: the record check, list fields, metadata, and
 * the label and annotation the proxier reads. The decoders (service-ports.ts,
 * endpoint-slices.ts, node-info.ts) validate the rest field by field.
 */

export type Json = Record<string, unknown>;

export const isRecord = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The label naming the Service an EndpointSlice belongs to. */
export const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';
/** When the change a slice reflects happened (network programming latency). */
export const TRIGGER_TIME_ANNOTATION = 'endpoints.kubernetes.io/last-change-trigger-time';

/** Records a problem with a field of the object being decoded (returns null, for `return report(...)`). */
export type Report = (field: string, reason: string) => null;

/** Short rendering of a bad value for problem messages. */
export function describeValue(v: unknown): string {
  if (v === undefined) return 'nothing';
  const text = JSON.stringify(v) ?? String(v);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

/** A list field: [] when unset; [] and `bad` told why when it is not a list. */
export function listField(obj: Json, key: string, bad?: (reason: string) => void): unknown[] {
  const v = obj[key];
  if (v === undefined || v === null) return [];
  if (Array.isArray(v)) return v;
  bad?.(`must be a list, got ${describeValue(v)}`);
  return [];
}

export interface ObjectMeta {
  /** "" when missing or not a string. */
  readonly name: string;
  readonly namespace: string;
  /** String-valued labels and annotations only. */
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string>>;
}

function strings(v: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (isRecord(v)) for (const [k, x] of Object.entries(v)) if (typeof x === 'string') out[k] = x;
  return out;
}

/** An object's metadata, whatever shape the object has. */
export function metadataOf(obj: unknown): ObjectMeta {
  const md = isRecord(obj) && isRecord(obj['metadata']) ? obj['metadata'] : {};
  return {
    name: typeof md['name'] === 'string' ? md['name'] : '',
    namespace: typeof md['namespace'] === 'string' ? md['namespace'] : '',
    labels: strings(md['labels']),
    annotations: strings(md['annotations']),
  };
}

/** "namespace/name" ("name" for a cluster-scoped object); null without a name. */
export function objectKey(obj: unknown): string | null {
  const { name, namespace } = metadataOf(obj);
  if (name === '') return null;
  return namespace !== '' ? `${namespace}/${name}` : name;
}

/** "namespace/service" an EndpointSlice belongs to (its service-name label), or null. */
export function sliceServiceKey(slice: unknown): string | null {
  const { namespace, labels } = metadataOf(slice);
  const service = labels[SERVICE_NAME_LABEL];
  return service && namespace ? `${namespace}/${service}` : null;
}
