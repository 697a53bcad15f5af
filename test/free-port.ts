/**
 * A TCP port free on both families just now, for a server a test opens on a port it must name in advance (a
 * healthCheckNodePort: upstream uses the service's, a test cannot pick one that is surely free).
 */
import { createServer } from 'node:net';

export function freePort(): Promise<number> {
  return new Promise<number>((resolve) => {
    const srv = createServer().listen(0, () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}
