/**
 * The proxier's StateBuilder over proxier/snapshot.ts: raw objects of one
 * service -> its ServicePortStates for one family.
 */
import { indexEndpointSlices } from './endpoint-slices.ts';
import { nodeInfoFrom, type NodeInfoOptions } from './node-info.ts';
import type { StateBuilder } from './proxier.ts';
import { servicePortStates } from './snapshot.ts';
import type { TopologyFeatures } from './topology.ts';

export function stateBuilder(nodeName: string, features: TopologyFeatures, nodeOptions: NodeInfoOptions = {}): StateBuilder {
  return {
    node: (obj) => nodeInfoFrom(obj, nodeName, nodeOptions),
    service: (svc, slices, node, family) => {
      const index = indexEndpointSlices(slices);
      const r = servicePortStates(svc, { family, node, slices: index, features });
      return { states: r.states, problems: [...r.problems, ...index.problems] };
    },
  };
}
