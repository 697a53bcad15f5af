/**
 * Where each logging call of a bundle chunk came from, for the log lines' caller (klog's `file.go:line`): from the
 * sources the logger names `iptables-mode.ts:245`, from a chunk it would name `run-B7gR6LPW.mjs:9138`, which says
 * nothing to an operator and which --vmodule patterns cannot match. The build reads each chunk's source map (not
 * shipped) and keeps, for the lines that call a logging method, the source file and line of the call: a few hundred
 * entries in dist/callers.json, read by src/log.ts (callerOf).
 */
import { relative, resolve } from 'node:path';
import type { ChunkCallers } from '../src/log.ts';

/** A call of a logging method (info, warn, error, debug, trace, fatal), as the bundler prints it. */
const LOG_CALL = /\.(?:info|warn|error|debug|trace|fatal)\(/g;
const BASE64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

/** One decoded mapping: generated column, source index, source line and column (all 0-based). */
type Segment = readonly [number, number, number, number];

/** A source map's `mappings` (base64 VLQ), per generated line; segments without a source are left out. */
export function decodeMappings(mappings: string): Segment[][] {
  const lines: Segment[][] = [];
  let source = 0;
  let sourceLine = 0;
  let sourceColumn = 0;
  for (const line of mappings.split(';')) {
    const segments: Segment[] = [];
    let column = 0;
    for (const text of line.split(',')) {
      if (text === '') continue;
      const fields: number[] = [];
      let value = 0;
      let shift = 0;
      for (const c of text) {
        const digit = BASE64.indexOf(c);
        if (digit < 0) throw new Error(`not a base64 VLQ digit in a source map: ${JSON.stringify(c)}`);
        value += (digit & 31) << shift;
        if (digit & 32) shift += 5;
        else {
          fields.push(value & 1 ? -(value >>> 1) : value >>> 1);
          value = 0;
          shift = 0;
        }
      }
      column += fields[0]!;
      if (fields.length < 4) continue;
      source += fields[1]!;
      sourceLine += fields[2]!;
      sourceColumn += fields[3]!;
      segments.push([column, source, sourceLine, sourceColumn]);
    }
    lines.push(segments);
  }
  return lines;
}

/**
 * The logging calls of one chunk: generated line (1-based) -> [column, `path:line`] of each call on it, the path
 * relative to the checkout. A call is mapped through the last segment at or before the method's name; calls that map
 * outside the checkout's own files (a dependency's) are left out.
 */
export function chunkCallers(
  code: string,
  map: { readonly mappings: string; readonly sources: readonly (string | null)[] },
  opts: { readonly mapDir: string; readonly root: string },
): ChunkCallers {
  const segments = decodeMappings(map.mappings);
  const paths = map.sources.map((s) => {
    if (s === null) return null;
    const path = relative(opts.root, resolve(opts.mapDir, s));
    return path.startsWith('..') || path.includes('node_modules') ? null : path;
  });
  const out: ChunkCallers = {};
  code.split('\n').forEach((text, i) => {
    for (const m of text.matchAll(LOG_CALL)) {
      const at = m.index + 1;
      const segment = segments[i]?.findLast((s) => s[0] <= at);
      const path = segment ? paths[segment[1]] : null;
      if (!segment || !path) continue;
      (out[String(i + 1)] ??= []).push([at + 1, `${path}:${segment[2] + 1}`]);
    }
  });
  return out;
}
