// Per-node log file `logs/node<ID>.log` (pino, JSON lines) with size-based rotation
// (node<ID>.log.1 ... .N), plus a short human line on stderr for the operator's terminal.
import { mkdirSync, renameSync, statSync, existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { pino, type Logger as PinoLogger } from 'pino';

export interface NodeLoggerOptions {
  readonly logDir: string;
  readonly nodeId: number;
  readonly maxFileBytes?: number;
  readonly keepFiles?: number;
  readonly level?: string;
  /** Also print info-and-above lines to stderr (the demo and interactive runs want this). */
  readonly echo?: boolean;
}

export interface NodeLogger {
  readonly logger: PinoLogger;
  readonly path: string;
  close(): void;
}

export function createNodeLogger(opts: NodeLoggerOptions): NodeLogger {
  mkdirSync(opts.logDir, { recursive: true });
  const path = join(opts.logDir, `node${opts.nodeId}.log`);
  const maxBytes = opts.maxFileBytes ?? 20 * 1024 * 1024;
  const keep = opts.keepFiles ?? 5;
  const file = pino.destination({ dest: path, sync: false, mkdir: true });
  const streams: pino.StreamEntry[] = [{ stream: file, level: (opts.level ?? 'info') as pino.Level }];
  if (opts.echo) {
    streams.push({
      level: 'info',
      stream: {
        write(line: string) {
          try {
            const o = JSON.parse(line) as { level: number; msg?: string; time: number };
            const lvl = o.level >= 50 ? 'ERROR' : o.level >= 40 ? 'WARN ' : 'INFO ';
            process.stderr.write(`[node ${opts.nodeId}] ${lvl} ${o.msg ?? ''}\n`);
          } catch {
            process.stderr.write(line);
          }
        },
      },
    });
  }
  const logger = pino({ base: { node: opts.nodeId }, level: opts.level ?? 'info', timestamp: pino.stdTimeFunctions.isoTime }, pino.multistream(streams));
  const timer = setInterval(() => {
    try {
      if (!existsSync(path) || statSync(path).size < maxBytes) return;
      if (existsSync(`${path}.${keep}`)) rmSync(`${path}.${keep}`);
      for (let i = keep - 1; i >= 1; i--) if (existsSync(`${path}.${i}`)) renameSync(`${path}.${i}`, `${path}.${i + 1}`);
      renameSync(path, `${path}.1`);
      file.reopen();
    } catch (err) {
      logger.warn({ err: (err as Error).message }, 'log rotation failed');
    }
  }, 5000);
  timer.unref();
  return {
    logger,
    path,
    close() {
      clearInterval(timer);
      try {
        file.flushSync();
      } catch {
        /* not yet open */
      }
    },
  };
}
