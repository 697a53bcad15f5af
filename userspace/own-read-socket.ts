/**
 * An accepted socket that reads into buffers the proxy owns.
 *
 * `net.connect` takes an `onread` option (read into a buffer the caller
 * gives, then call back), but `net.Server` does not: every read of an
 * accepted socket allocates a fresh 64 KiB buffer, which is what an upload
 * through the proxy cost most (the kernel copies into memory no cache has
 * seen, and the buffers' churn makes V8 collect the whole heap over and
 * over; measured in BENCHMARKS.md). So the accepted socket, still paused
 * (`pauseOnConnect`), hands its libuv handle to a new `net.Socket` made with
 * `onread`, the way `net.Server` itself makes accepted sockets (the
 * constructor's `handle` option). The shell it came in is destroyed without
 * its handle, which releases the server's connection count and closes
 * nothing.
 *
 * `handle` and `_handle` are Node's, not documented API: when the shell has
 * no handle to give (another runtime, a future Node), the accepted socket is
 * returned as it is and the proxy copies from its 'data' events instead.
 * tcp-proxy.test.ts checks that the client side of an upload reads into own
 * buffers, so a Node that drops this is noticed.
 */
import { Socket, type OnReadOpts } from 'node:net';

interface WithHandle {
  _handle: { readStart?: unknown; readStop?: unknown } | null;
}

/** The accepted, paused `socket` re-made to read through `onread`, paused; or `socket` itself if it cannot be. */
export function ownReadSocket(socket: Socket, onread: OnReadOpts, allowHalfOpen: boolean): Socket {
  const shell = socket as Socket & WithHandle;
  const handle = shell._handle;
  if (!handle || typeof handle.readStart !== 'function' || typeof handle.readStop !== 'function') return socket;
  shell._handle = null;
  shell.destroy();
  const s = new Socket({ handle, allowHalfOpen, readable: true, writable: true, onread } as ConstructorParameters<typeof Socket>[0]);
  // The constructor starts reading; reads begin when the copy loop resumes it.
  s.pause();
  return s;
}
