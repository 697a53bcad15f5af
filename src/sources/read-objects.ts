/**
 * Reads the manifests given with --objects: one file, or every .yaml, .yml
 * and .json file of a directory (sorted by name, not recursive), merged.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { parseObjects, type ParsedObjects } from './parse-objects.ts';

export class ObjectsFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ObjectsFileError';
  }
}

export async function listManifestFiles(path: string): Promise<string[]> {
  let info;
  try {
    info = await stat(path);
  } catch (err) {
    throw new ObjectsFileError(`cannot read --objects ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  if (!info.isDirectory()) return [path];
  const names = (await readdir(path)).filter((n) => /\.(ya?ml|json)$/i.test(n)).sort();
  return names.map((n) => join(path, n));
}

/** Reads and parses every manifest; a file that cannot be read or parsed is an ObjectsFileError naming it. */
export async function readObjects(path: string): Promise<ParsedObjects> {
  const merged: ParsedObjects = { services: [], slices: [], nodes: [], serviceCIDRs: [], problems: [] };
  for (const file of await listManifestFiles(path)) {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      throw new ObjectsFileError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
    let parsed: ParsedObjects;
    try {
      parsed = parseObjects(text, file);
    } catch (err) {
      throw new ObjectsFileError((err as Error).message);
    }
    merged.services.push(...parsed.services);
    merged.slices.push(...parsed.slices);
    merged.nodes.push(...parsed.nodes);
    merged.serviceCIDRs!.push(...(parsed.serviceCIDRs ?? []));
    merged.problems.push(...parsed.problems);
  }
  return merged;
}
