import { describe, expect, it } from 'vitest';
import { appendPortIfNeeded, parseHostPort } from './host-port.ts';

describe('bind addresses', () => {
  it.each([
    ['127.0.0.1', '127.0.0.1:10256'],
    ['0.0.0.0', '0.0.0.0:10256'],
    ['::1', '[::1]:10256'],
    ['::', '[::]:10256'],
    ['127.0.0.1:9999', '127.0.0.1:9999'],
    ['[::1]:9999', '[::1]:9999'],
    ['', ''],
    ['localhost', 'localhost'], // left for validation to refuse
  ])('appends the default port to %j as upstream AppendPortIfNeeded', (given, want) => {
    expect(appendPortIfNeeded(given, 10256)).toBe(want);
  });

  it('parses ip:port and [ipv6]:port, and nothing else (upstream validateHostPort)', () => {
    expect(parseHostPort('127.0.0.1:10249')).toEqual({ host: '127.0.0.1', port: 10249 });
    expect(parseHostPort('[fd00::1]:10249')).toEqual({ host: 'fd00::1', port: 10249 });
    expect(parseHostPort(':10249')).toEqual({ host: '0.0.0.0', port: 10249 });
    for (const bad of ['127.0.0.1', 'localhost:10249', '127.0.0.1:65536', 'fd00::1:10249', '[fd00::1]', '1.2.3.4:x'])
      expect(parseHostPort(bad), bad).toBeNull();
  });
});
