/**
 * How the sandbox demo talks: numbered steps, short indented lines, the
 * commands it ran (so a reader can type them), small tables and hit counts.
 * Plain text; bold titles and dim commands only when stdout is a terminal
 * (and NO_COLOR is unset).
 *
 *   const story = createStory((s) => process.stdout.write(s), { color: process.stdout.isTTY === true });
 *   story.step('Building the sandbox');
 *   story.line('4 namespaces ...');
 */

export interface StoryOptions {
  readonly color: boolean;
  /** Shown before each step number, e.g. "iptables". */
  readonly label?: string;
  /** Steps of one run (printed as "n/total"). */
  readonly total?: number;
}

export interface Story {
  /** Starts the next numbered step. */
  step(title: string): void;
  line(text?: string): void;
  /** A command the demo ran, as the reader would type it. */
  command(text: string): void;
  /** Lines of program output, indented and cut to the terminal-friendly width. */
  output(lines: readonly string[]): void;
  table(header: readonly string[], rows: readonly (readonly string[])[]): void;
  ok(text: string): void;
  warn(text: string): void;
  /** A banner line between runs. */
  banner(text: string): void;
  /** Unindented text (the introduction). */
  plain(text: string): void;
  /** A new numbering (for the next mode). */
  restart(label: string): void;
}

/** The widest line of program output the story shows (output cuts the rest). */
export const WIDTH = 132;

export function wantColor(stream: { isTTY?: boolean }): boolean {
  return stream.isTTY === true && (process.env['NO_COLOR'] ?? '') === '' && process.env['TERM'] !== 'dumb';
}

export function createStory(write: (text: string) => void, opts: StoryOptions): Story {
  const paint = (code: string, text: string): string => (opts.color ? `\x1b[${code}m${text}\x1b[0m` : text);
  let label = opts.label ?? '';
  let n = 0;
  const say = (text: string): void => write(`${text}\n`);
  const cut = (text: string, width = WIDTH): string => (text.length > width ? `${text.slice(0, width - 3)}...` : text);
  return {
    step(title) {
      n += 1;
      const where = opts.total === undefined ? `${n}` : `${n}/${opts.total}`;
      say('');
      say(paint('1', `${label ? `[${label}] ` : ''}${where}  ${title}`));
    },
    line(text = '') {
      say(text === '' ? '' : `   ${text}`);
    },
    command(text) {
      say(paint('2', `   $ ${text}`));
    },
    output(lines) {
      for (const l of lines) say(`     ${cut(l)}`);
    },
    table(header, rows) {
      const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
      const fmt = (cells: readonly string[]): string => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ');
      say(`   ${paint('1', fmt(header))}`);
      for (const r of rows) say(`   ${fmt(r)}`);
    },
    ok(text) {
      say(`   ${paint('32', 'ok')}  ${text}`);
    },
    warn(text) {
      say(`   ${paint('33', '!!')}  ${text}`);
    },
    banner(text) {
      say('');
      say(paint('1;36', `== ${text} ==`));
    },
    plain(text) {
      say(text);
    },
    restart(next) {
      label = next;
      n = 0;
    },
  };
}

/** "1.2 s" or "340 ms". */
export function seconds(ms: number): string {
  return ms >= 1000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms)} ms`;
}

/**
 * Which pods answered, one line each with a bar:
 *   pod-a  node-1   9  #########
 * Pods listed in `expect` that got nothing are shown with 0; failures last.
 */
export function hitLines(
  hits: ReadonlyMap<string, number>,
  nodeOf: (pod: string) => string,
  opts: { expect?: readonly string[]; failed?: number } = {},
): string[] {
  const names = [...new Set([...(opts.expect ?? []), ...hits.keys()])].sort();
  const width = Math.max(...names.map((n) => n.length), 5);
  const lines = names.map((name) => {
    const count = hits.get(name) ?? 0;
    return `${name.padEnd(width)}  ${nodeOf(name).padEnd(6)}  ${String(count).padStart(3)}  ${'#'.repeat(Math.min(count, 40))}`.trimEnd();
  });
  if (opts.failed !== undefined && opts.failed > 0) lines.push(`${'(failed)'.padEnd(width)}  ${''.padEnd(6)}  ${String(opts.failed).padStart(3)}`);
  return lines;
}
