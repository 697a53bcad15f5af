import { describe, expect, it } from 'vitest';
import { formatProblem } from '../../proxier/types.ts';
import { parseObjects } from './parse-objects.ts';

const names = (objs: unknown[]) =>
  objs.map((o) => {
    const md = (o as { metadata: { name: string; namespace?: string } }).metadata;
    return md.namespace ? `${md.namespace}/${md.name}` : md.name;
  });

describe('parseObjects', () => {
  it('reads multi-document YAML, sorting objects by kind and ignoring other kinds', () => {
    const text = [
      '# a cluster',
      'apiVersion: v1',
      'kind: Service',
      'metadata: {name: svc1, namespace: ns1}',
      'spec: {clusterIP: 172.30.0.41, ports: [{name: p80, port: 80}]}',
      '---',
      'apiVersion: discovery.k8s.io/v1',
      'kind: EndpointSlice',
      'metadata: {name: svc1-abc, namespace: ns1, labels: {kubernetes.io/service-name: svc1}}',
      'addressType: IPv4',
      'endpoints: [{addresses: [10.180.0.1]}]',
      '---',
      'apiVersion: v1',
      'kind: Node',
      'metadata: {name: node-1}',
      '---',
      'apiVersion: v1',
      'kind: ConfigMap',
      'metadata: {name: cm}',
      '---',
      '',
    ].join('\n');
    const r = parseObjects(text, 'cluster.yaml');
    expect(r.problems).toEqual([]);
    expect(names(r.services)).toEqual(['ns1/svc1']);
    expect(names(r.slices)).toEqual(['ns1/svc1-abc']);
    expect(names(r.nodes)).toEqual(['node-1']);
    // Core schema: values stay what the API would read (an IP is a string, not a number).
    expect(r.services[0]).toMatchObject({ spec: { clusterIP: '172.30.0.41', ports: [{ port: 80 }] } });
  });

  it('reads a JSON object', () => {
    const r = parseObjects(JSON.stringify({ apiVersion: 'v1', kind: 'Node', metadata: { name: 'n1' } }), 'node.json');
    expect(names(r.nodes)).toEqual(['n1']);
  });

  it('reads JSON with JSON.parse: problems name the line where the document starts, a repeated key keeps its last value', () => {
    const list = {
      apiVersion: 'v1',
      kind: 'List',
      items: [
        { apiVersion: 'v1', kind: 'Service', metadata: { name: 'a', namespace: 'x' } },
        { apiVersion: 'v1', kind: 'Service', metadata: {} },
      ],
    };
    const r = parseObjects(`\n\n  ${JSON.stringify(list, null, 2)}\n`, 'l.json');
    expect(names(r.services)).toEqual(['x/a']);
    expect(r.problems.map(formatProblem)).toEqual(['Service l.json:3 (document 1) item 2: has no metadata.name']);
    const dup = parseObjects('{"apiVersion": "v1", "kind": "Node", "metadata": {"name": "a", "name": "b"}}', 'd.json');
    expect(names(dup.nodes)).toEqual(['b']);
    // Not JSON after all (YAML flow style starting with "{"): the YAML parser reads it.
    expect(names(parseObjects('{apiVersion: v1, kind: Node, metadata: {name: n}}', 'f.yaml').nodes)).toEqual(['n']);
  });

  it('reads a lone surrogate escape as U+FFFD, as Go encoding/json (unquote) does; a pair stays one character', () => {
    const json =
      '{"apiVersion":"v1","kind":"Service","metadata":{"name":"svc-l\\udc2c","namespace":"ns","labels":{"k\\ud800":"v\\udfff"}},"spec":{"ports":[{"name":"p\\ud83d\\ude00","port":80}]}}';
    const yaml =
      'apiVersion: v1\nkind: Service\nmetadata:\n  name: "svc-l\\udc2d"\n  namespace: ns\nspec:\n  ports: [{name: "p\\ud83d\\ude00", port: 80}]\n';
    for (const [text, name] of [
      [json, 'svc-l\uFFFD'],
      [yaml, 'svc-l\uFFFD'],
    ] as const) {
      const svc = parseObjects(text, 'odd') as { services: { metadata: { name: string; labels?: object }; spec: { ports: { name: string }[] } }[] };
      expect(svc.services[0]!.metadata.name).toBe(name);
      expect(svc.services[0]!.spec.ports[0]!.name).toBe('p\u{1F600}');
    }
    expect((parseObjects(json, 'odd').services[0] as { metadata: { labels: object } }).metadata.labels).toEqual({ 'k\uFFFD': 'v\uFFFD' });
  });

  it('flattens Lists; items of a typed list inherit kind and apiVersion', () => {
    const list = { apiVersion: 'v1', kind: 'List', items: [{ apiVersion: 'v1', kind: 'Service', metadata: { name: 'a', namespace: 'x' } }] };
    expect(names(parseObjects(JSON.stringify(list), 'l.json').services)).toEqual(['x/a']);
    const typed = 'apiVersion: v1\nkind: ServiceList\nitems:\n- metadata: {name: b, namespace: y}\n';
    const r = parseObjects(typed, 'l.yaml');
    expect(r.services).toEqual([{ kind: 'Service', apiVersion: 'v1', metadata: { name: 'b', namespace: 'y' } }]);
    const slices = parseObjects('apiVersion: discovery.k8s.io/v1\nkind: EndpointSliceList\nitems: [{metadata: {name: s, namespace: y}}]\n', 's.yaml');
    expect(names(slices.slices)).toEqual(['y/s']);
  });

  it('reads ServiceCIDRs as kubectl get servicecidrs -o yaml writes them (v1 from 1.33, v1beta1 on 1.31-1.32), cluster-scoped', () => {
    const text = [
      'apiVersion: networking.k8s.io/v1',
      'kind: ServiceCIDRList',
      'items:',
      '- metadata: {name: kubernetes}',
      '  spec: {cidrs: [10.96.0.0/12, "fd00:10:96::/112"]}',
      '  status: {conditions: [{type: Ready, status: "True"}]}',
      '---',
      'apiVersion: networking.k8s.io/v1beta1',
      'kind: ServiceCIDR',
      'metadata: {name: extra}',
      'spec: {cidrs: [10.200.0.0/16]}',
      '---',
      'apiVersion: networking.k8s.io/v1alpha2',
      'kind: ServiceCIDR',
      'metadata: {name: unknown-version}',
    ].join('\n');
    const r = parseObjects(text, 'cidrs.yaml');
    expect(names(r.serviceCIDRs!)).toEqual(['kubernetes', 'extra']);
    expect(r.serviceCIDRs![0]).toMatchObject({
      kind: 'ServiceCIDR',
      apiVersion: 'networking.k8s.io/v1',
      spec: { cidrs: ['10.96.0.0/12', 'fd00:10:96::/112'] },
    });
    expect(r.problems).toEqual([]);
  });

  it('puts namespaced objects without a namespace into "default", as kubectl apply does', () => {
    const r = parseObjects('apiVersion: v1\nkind: Service\nmetadata: {name: a}\n---\napiVersion: v1\nkind: Node\nmetadata: {name: n}\n', 'f.yaml');
    expect(names(r.services)).toEqual(['default/a']);
    expect(names(r.nodes)).toEqual(['n']);
  });

  it('skips malformed documents, naming file, line and document number', () => {
    const text = [
      'apiVersion: v1', //              line 1, document 1
      'kind: Service',
      'metadata: {name: ok, namespace: ns}',
      '---',
      '- just', //                      line 5, document 2
      '- a list',
      '---',
      'kind: Service', //               line 8, document 3
      'metadata: {name: x}',
      '---',
      'apiVersion: v1', //              line 11, document 4
      'metadata: {name: y}',
      '---',
      'apiVersion: v1', //              line 14, document 5
      'kind: Service',
      'metadata: {namespace: ns}',
      '---',
      'apiVersion: discovery.k8s.io/v1beta1', // line 18, document 6
      'kind: EndpointSlice',
      'metadata: {name: z, namespace: ns}',
      '---',
      '42', //                          line 22, document 7
    ].join('\n');
    const r = parseObjects(text, 'bad.yaml');
    expect(names(r.services)).toEqual(['ns/ok']);
    expect(r.problems.map(formatProblem)).toEqual([
      'Document bad.yaml:5 (document 2): not an object (got a list)',
      'Service bad.yaml:8 (document 3): has no apiVersion',
      'Document bad.yaml:11 (document 4): has no kind',
      'Service bad.yaml:14 (document 5): has no metadata.name',
      'EndpointSlice bad.yaml:18 (document 6): EndpointSlice discovery.k8s.io/v1beta1 is not supported (use discovery.k8s.io/v1)',
      'Document bad.yaml:22 (document 7): not an object (got number)',
    ]);
  });

  it('names list items that are malformed', () => {
    const r = parseObjects('apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Node}\n', 'l.yaml');
    expect(r.problems.map(formatProblem)).toEqual(['Node l.yaml:1 (document 1) item 1: has no metadata.name']);
  });

  it('rejects the whole file on a syntax error, with its line and column', () => {
    expect(() => parseObjects('apiVersion: v1\nkind: Service\nmetadata: {name: a\n', 'broken.yaml')).toThrow(
      /^broken\.yaml: YAML syntax error at line \d+, column \d+: /,
    );
    expect(() => parseObjects('a: 1\nb: 2\na: 3\n', 'dup.yaml')).toThrow('dup.yaml: YAML syntax error at line 3, column 1: duplicated mapping key');
    expect(() => parseObjects('{"kind": "Service",', 'x.json')).toThrow(/^x\.json: YAML syntax error at line 1/);
  });

  it('accepts empty files and empty documents', () => {
    expect(parseObjects('', 'empty.yaml')).toEqual({ services: [], slices: [], nodes: [], serviceCIDRs: [], problems: [] });
    expect(parseObjects('---\n# nothing\n---\n', 'c.yaml')).toEqual({ services: [], slices: [], nodes: [], serviceCIDRs: [], problems: [] });
  });
});
