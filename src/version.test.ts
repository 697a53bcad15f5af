import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { VERSION, versionRequest } from './version.ts';

describe('--version (component-base verflag)', () => {
  it("is package.json's version", () => {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
    expect(VERSION).toBe(pkg.version);
  });

  it('prints on --version, --version=true and --version=raw; --version=false runs the agent', () => {
    expect(versionRequest(['--version']).print).toBe(`kube-proxy-ts v${VERSION}\n`);
    expect(versionRequest(['--v=2', '--version=true']).print).toBe(`kube-proxy-ts v${VERSION}\n`);
    expect(JSON.parse(versionRequest(['--version=raw']).print!)).toMatchObject({ gitVersion: `v${VERSION}` });
    expect(versionRequest(['--version=false', '--v=2'])).toEqual({ print: null, rest: ['--v=2'] });
    expect(versionRequest(['--v=2'])).toEqual({ print: null, rest: ['--v=2'] });
  });

  it('refuses a value verflag refuses, naming it', () => {
    expect(versionRequest(['--version=banana']).error).toBe(
      'invalid argument "banana" for "--version" flag: strconv.ParseBool: parsing "banana": invalid syntax',
    );
  });
});
