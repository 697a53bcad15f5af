/**
 * The --config watch. Upstream (Options.initWatcher and eventHandler in cmd/kube-proxy/app) exits with "content of
 * the proxy server's configuration file was updated" on a write or rename of the file, for the DaemonSet (or systemd)
 * to start it again with the new one. Where that falls short, this does better:
 * - a ConfigMap volume's update (kubelet renames `..data` to a new directory and deletes the old file: a chmod and a
 *   remove on the watched inode) is missed upstream (kubernetes/kubernetes#132877), and so is any change after an
 *   editor's rename, whose inode the watch was on. Here the file's directory is watched as well as the file, and the
 *   file's watch is made again after each event;
 * - an event whose file has the content the agent started with (a touch, a chmod, the same text written again) is
 *   no change;
 * - new content that does not load (a YAML error, an invalid field, a missing file) is logged, naming the problem, and
 *   the agent keeps running with the configuration it has: restarting would only crash-loop on the file with the
 *   node's rules frozen. Once the file loads, the agent exits.
 */
import { watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Logger } from '../../proxier/log.ts';

/** Upstream's error when the file changed (its exit status 1 restarts it under systemd's Restart=on-failure too). */
export const CONFIG_UPDATED = "content of the proxy server's configuration file was updated";

export interface ConfigWatchOptions {
  /** The file's text when the agent loaded it. */
  readonly startedWith: string;
  /** Whether the file as it is now loads: null, or the problem (the error a start would print). */
  readonly check: () => Promise<string | null>;
  readonly log: Logger;
  /** Events are gathered this long before the file is read (kubelet's update is several). Default 100 ms. */
  readonly settleMs?: number;
}

/** Resolves with CONFIG_UPDATED once the file at `path` holds new content that loads; never without a path. */
export function configChanged(path: string | null, o: ConfigWatchOptions): Promise<string> {
  if (!path) return new Promise(() => {});
  return new Promise((resolve) => {
    const watchers = new Map<'dir' | 'file', FSWatcher>();
    let timer: NodeJS.Timeout | null = null;
    let examining = false;
    let again = false;
    let done = false;
    // What the file held when last looked at: the start, or a new content already reported as unusable.
    let seen: string | null = o.startedWith;

    const arm = (which: 'dir' | 'file', target: string): void => {
      watchers.get(which)?.close();
      watchers.delete(which);
      try {
        watchers.set(
          which,
          watch(target, { persistent: false }, schedule).on('error', () => watchers.delete(which)),
        );
      } catch {
        // Not there (yet): the directory's watch sees it come back.
      }
    };
    function schedule(): void {
      if (done) return;
      if (timer) clearTimeout(timer);
      timer = setTimeout(() => void examine(), o.settleMs ?? 100);
    }
    async function examine(): Promise<void> {
      if (examining) {
        again = true;
        return;
      }
      examining = true;
      arm('file', path!);
      let text: string | null;
      let problem: string | null = null;
      try {
        text = await readFile(path!, 'utf8');
      } catch (err) {
        text = null;
        problem = `cannot read it: ${(err as NodeJS.ErrnoException).code ?? String(err)}`;
      }
      if (text !== seen) {
        seen = text;
        if (text !== o.startedWith) {
          problem ??= await o.check();
          if (problem === null) {
            done = true;
            for (const w of watchers.values()) w.close();
            o.log.warn({ path }, `${CONFIG_UPDATED}: exiting to be started again with it`);
            resolve(CONFIG_UPDATED);
            return;
          }
          o.log.error(
            { path },
            `the --config file changed, but the new content cannot be used: ${problem}; still running with the configuration it started with`,
          );
        } else o.log.info({ path }, 'the --config file is back to the content the agent started with');
      }
      examining = false;
      if (again) {
        again = false;
        schedule();
      }
    }

    arm('dir', dirname(path));
    arm('file', path);
    // A change between the load and this watch.
    schedule();
  });
}
