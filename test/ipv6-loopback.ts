/**
 * Whether this machine has ::1, for tests that reach a server over IPv6 (an IPv6-disabled kernel has no
 * /proc/net/if_inet6, a network namespace may lack the loopback address).
 */
import { readFileSync } from 'node:fs';

export function hasIPv6Loopback(): boolean {
  try {
    return /^0{31}1 /m.test(readFileSync('/proc/net/if_inet6', 'utf8'));
  } catch {
    return false;
  }
}
