/**
 * An HTTP Retry-After value as client-go's checkWait reads it: a whole number of seconds above zero; an HTTP date is
 * not read. null when the value says nothing usable. The API client (sources/kube-client.ts) and `top` (reading the
 * agent's /debug/traffic) read it the same way.
 */
export function retryAfterSeconds(raw: unknown): number | null {
  if (typeof raw !== 'string' || !/^\s*\d+\s*$/.test(raw)) return null;
  const seconds = Number(raw);
  return seconds > 0 ? seconds : null;
}
