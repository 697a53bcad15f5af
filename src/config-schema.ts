/**
 * The KubeProxyConfiguration v1alpha1 fields kube-proxy-ts knows but does not
 * map to a flag (the mapped ones come from the flag table's `config` paths):
 * other modes' and platforms' settings, logging. Upstream decodes them, so
 * their types are checked (a wrong type is fatal, strict or lenient); a field
 * in neither list is unknown (a warning, after upstream's lenient fallback).
 * From k8s.io/kube-proxy/config/v1alpha1 types.go and component-base's
 * LoggingConfiguration.
 */

/** Field types as the file carries them; `object` fields are walked, `any` is not checked. */
export type FieldType = 'string' | 'bool' | 'int' | 'float' | 'duration' | 'stringList' | 'mapStringBool' | 'object' | 'any';

// logging.vmodule, logging.flushFrequency and each format's infoBufferSize are read by parseConfigFile itself.
const logFormatOptions = (format: 'json' | 'text'): Record<string, FieldType> => ({
  [`logging.options.${format}`]: 'object',
});

export const UNMAPPED_FIELDS: Readonly<Record<string, FieldType>> = {
  apiVersion: 'string',
  kind: 'string',
  clientConnection: 'object',
  'clientConnection.acceptContentTypes': 'string',
  conntrack: 'object',
  detectLocal: 'object',
  'detectLocal.clusterCIDRs': 'stringList',
  iptables: 'object',
  ipvs: 'object',
  'ipvs.syncPeriod': 'duration',
  'ipvs.minSyncPeriod': 'duration',
  'ipvs.scheduler': 'string',
  'ipvs.excludeCIDRs': 'stringList',
  'ipvs.strictARP': 'bool',
  'ipvs.tcpTimeout': 'duration',
  'ipvs.tcpFinTimeout': 'duration',
  'ipvs.udpTimeout': 'duration',
  nftables: 'object',
  'nftables.masqueradeBit': 'int',
  'nftables.masqueradeAll': 'bool',
  'nftables.syncPeriod': 'duration',
  'nftables.minSyncPeriod': 'duration',
  winkernel: 'object',
  'winkernel.networkName': 'string',
  'winkernel.sourceVip': 'string',
  'winkernel.enableDSR': 'bool',
  'winkernel.rootHnsEndpointName': 'string',
  'winkernel.forwardHealthCheckVip': 'bool',
  logging: 'object',
  'logging.options': 'object',
  ...logFormatOptions('json'),
  ...logFormatOptions('text'),
};

/** A description of a value for error messages. */
export function describeValue(v: unknown): string {
  return Array.isArray(v) ? 'a list' : v === null ? 'null' : typeof v === 'object' ? 'an object' : `${typeof v} ${JSON.stringify(v)}`;
}

/** What a field of this type must be, or null when the value fits (null fits every type, as Go decodes it to the zero value). */
export function typeProblem(type: FieldType, v: unknown): string | null {
  if (v === null || v === undefined || type === 'any') return null;
  switch (type) {
    case 'string':
      return typeof v === 'string' ? null : 'a string';
    case 'bool':
      return typeof v === 'boolean' ? null : 'true or false';
    case 'int':
      return Number.isInteger(v) ? null : 'an integer';
    case 'float':
      return typeof v === 'number' ? null : 'a number';
    case 'duration':
      return typeof v === 'string' ? null : 'a duration string such as "30s"';
    case 'stringList':
      return Array.isArray(v) && v.every((x) => typeof x === 'string') ? null : 'a list of strings';
    case 'mapStringBool':
      return typeof v === 'object' && !Array.isArray(v) && Object.values(v).every((x) => typeof x === 'boolean') ? null : 'a map of name: true|false';
    case 'object':
      return typeof v === 'object' && !Array.isArray(v) ? null : 'an object';
  }
}
