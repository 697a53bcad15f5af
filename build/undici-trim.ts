/**
 * What the bundle takes of undici: client-node imports `fetch`, `Agent` and `ProxyAgent` from it, and undici is
 * CommonJS, so the bundler cannot drop the rest of its index.js: the mock agents, the cache stores, WebSocket,
 * EventSource, cookies, the retry, socks5 and h2c agents (about half of the 1.1 MB of undici in the bundle, evaluated
 * at start). In the bundle an `import ... from 'undici'` made by client-node resolves to undiciSubset instead: those
 * three exports, built from the same undici modules as index.js builds them, with index.js's two effects on load (the
 * request API methods added to Dispatcher.prototype, the global dispatcher set up by lib/global.js), all of it loaded
 * on first use only.
 *
 * The build first checks that undici's index.js still defines them so (INDEX_LINES); otherwise it fails, naming the
 * line that changed. A name client-node imports that the subset lacks fails the build too (a missing export).
 */
import { dirname, join } from 'node:path';
import type { Plugin } from 'rolldown';

const SUBSET_ID = '\0kube-proxy-ts:undici-subset';
const CLIENT_NODE = /[/\\]@kubernetes[/\\]client-node[/\\]dist[/\\]/;

/** The lines of undici's index.js that undiciSubset repeats; each must be there as written. */
export const INDEX_LINES = [
  "const Dispatcher = require('./lib/dispatcher/dispatcher')",
  "const Agent = require('./lib/dispatcher/agent')",
  "const ProxyAgent = require('./lib/dispatcher/proxy-agent')",
  "const api = require('./lib/api')",
  "const { getGlobalDispatcher, setGlobalDispatcher } = require('./lib/global')",
  'Object.assign(Dispatcher.prototype, api)',
  'module.exports.Agent = Agent',
  'module.exports.ProxyAgent = ProxyAgent',
  "const fetchImpl = require('./lib/web/fetch').fetch",
  'module.exports.fetch = function fetch (init, options = undefined) {',
  "const currentFilename = typeof __filename !== 'undefined' ? __filename : undefined",
];

/** INDEX_LINES missing from index.js (none: the subset is what index.js exports). */
export function missingIndexLines(indexSource: string): string[] {
  const lines = new Set(indexSource.split('\n').map((l) => l.trimEnd()));
  return INDEX_LINES.filter((l) => !lines.has(l));
}

/**
 * The subset, for undici's package directory: CommonJS, so that the bundler keeps each undici module behind its own
 * `require` and nothing of undici runs until one of the three is used. The agent uses none of them (it talks to the API
 * server through Node's http client: src/sources/kube-http.ts); they are there for whatever in client-node still
 * reaches for them. `Agent` and `ProxyAgent` construct undici's own classes (`new Agent(o)` returns an undici Agent;
 * client-node never tests `instanceof`), `fetch` is index.js's fetch where `__filename` is undefined (an ES module:
 * the bundle): a rejection's stack is captured at the call.
 */
export function undiciSubset(dir: string): string {
  const lib = (p: string): string => JSON.stringify(join(dir, 'lib', p));
  return `'use strict';
let undici;
function load() {
  if (undici === undefined) {
    const Dispatcher = require(${lib('dispatcher/dispatcher.js')});
    Object.assign(Dispatcher.prototype, require(${lib('api/index.js')}));
    require(${lib('global.js')});
    undici = { Agent: require(${lib('dispatcher/agent.js')}), ProxyAgent: require(${lib('dispatcher/proxy-agent.js')}), fetch: require(${lib('web/fetch/index.js')}).fetch };
  }
  return undici;
}
function fetch(init, options = undefined) {
  return load().fetch(init, options).catch((err) => {
    if (err && typeof err === 'object') Error.captureStackTrace(err, fetch);
    throw err;
  });
}
module.exports = {
  fetch,
  Agent: function Agent(options) { return new (load().Agent)(options); },
  ProxyAgent: function ProxyAgent(options) { return new (load().ProxyAgent)(options); },
};
`;
}

/** The rolldown plugin: client-node's `undici` resolves to the subset, after checking index.js. */
export function undiciTrim(readSource: (path: string) => string): Plugin {
  let dir = '';
  return {
    name: 'undici-trim',
    async resolveId(source, importer) {
      if (source !== 'undici' || !importer || !CLIENT_NODE.test(importer)) return null;
      if (!dir) {
        const index = await this.resolve('undici', importer, { skipSelf: true });
        if (!index) return null;
        const missing = missingIndexLines(readSource(index.id));
        if (missing.length > 0)
          this.error(`undici's index.js (${index.id}) no longer defines what build/undici-trim.ts's subset repeats:\n  ${missing.join('\n  ')}`);
        dir = dirname(index.id);
      }
      return SUBSET_ID;
    },
    load(id) {
      return id === SUBSET_ID ? undiciSubset(dir) : null;
    },
  };
}
