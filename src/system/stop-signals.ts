/**
 * SIGTERM / SIGINT -> one orderly stop, whenever the signal arrives.
 *
 * The listeners are installed once, when the process starts, and stay
 * installed until it exits. That is what keeps a signal from killing the
 * agent while a child process runs: execa kills its children when the parent
 * exits through signal-exit, whose signal listener, on SIGTERM, counts the
 * process's listeners for that signal and, when it finds only its own, runs
 * its exit hooks and re-raises the signal (the process then dies by it, exit
 * 143). A `process.once` listener removes itself before it runs, so when it
 * came first signal-exit saw itself alone: a SIGTERM during an
 * iptables-restore or conntrack run killed the agent instead of stopping it.
 * With a listener that stays, signal-exit leaves the signal alone, the agent
 * stops (letting a running restore finish) and exits 0.
 */

export type StopSignal = 'SIGTERM' | 'SIGINT';

/** The part of `process` this needs (tests pass an EventEmitter). */
export interface SignalSource {
  on(event: StopSignal, listener: () => void): unknown;
  off(event: StopSignal, listener: () => void): unknown;
}

export interface StopListener {
  /** Resolves with the first stop signal. */
  readonly stopped: Promise<StopSignal>;
  /** Removes the listeners (the process is about to exit). */
  dispose(): void;
}

/**
 * Listens for SIGTERM and SIGINT for the life of the process. The first one
 * resolves `stopped`; later ones are reported to `onRepeat` and otherwise
 * ignored (the stop is already under way; SIGKILL forces an exit).
 */
export function listenForStop(source: SignalSource, onRepeat: (signal: StopSignal) => void = () => {}): StopListener {
  let first: StopSignal | null = null;
  let resolve: (signal: StopSignal) => void = () => {};
  const stopped = new Promise<StopSignal>((r) => (resolve = r));
  const handlers = (['SIGTERM', 'SIGINT'] as const).map((signal) => {
    const handler = (): void => {
      if (first === null) {
        first = signal;
        resolve(signal);
      } else onRepeat(signal);
    };
    source.on(signal, handler);
    return [signal, handler] as const;
  });
  return {
    stopped,
    dispose: () => {
      for (const [signal, handler] of handlers) source.off(signal, handler);
    },
  };
}
