/**
 * An HTTP Retry-After value as client-go's checkWait reads it (retryAfterSeconds: strconv.Atoi of the header, which
 * Go's header reader has trimmed): a whole number of seconds, a sign allowed; an HTTP date is not read. null when the
 * value says nothing usable, and for 0 or less (client-go's rest client would ask again at once; here the back-off
 * applies). The API client (sources/kube-client.ts) and `top` (reading the agent's /debug/traffic) read it the same way.
 */
export function retryAfterSeconds(raw: unknown): number | null {
  if (typeof raw !== 'string' || !/^\s*[+-]?\d+\s*$/.test(raw)) return null;
  const seconds = Number(raw);
  return seconds > 0 ? seconds : null;
}
