// Test helpers shared by the net tests: a logger that records every line, and a polling wait.
import type { Logger } from '../../src/util/logger-port.js';

export interface LogLine {
  readonly level: 'info' | 'warn' | 'error' | 'debug';
  readonly obj: object;
  readonly msg: string;
}

export interface CapturingLogger extends Logger {
  readonly lines: LogLine[];
  find(level: LogLine['level'], re: RegExp): LogLine | undefined;
  /** A line whose `event` field is `event` and whose other fields include `fields`. */
  findEvent(event: string, fields?: Record<string, unknown>): LogLine | undefined;
}

export function capturingLogger(): CapturingLogger {
  const lines: LogLine[] = [];
  const at =
    (level: LogLine['level']) =>
    (obj: object, msg?: string): void => {
      lines.push({ level, obj, msg: msg ?? '' });
    };
  return {
    lines,
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    debug: at('debug'),
    find: (level, re) => lines.find((l) => l.level === level && re.test(l.msg)),
    findEvent: (event, fields = {}) =>
      lines.find((l) => {
        const o = l.obj as Record<string, unknown>;
        return o['event'] === event && Object.entries(fields).every(([k, v]) => o[k] === v);
      }),
  };
}

export async function waitFor(pred: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
