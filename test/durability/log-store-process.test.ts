// Real processes: a writer killed with SIGKILL at random moments, and the lock between processes.
import { strict as assert } from 'node:assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { FileLogStore } from '../../src/durability/log-store.js';
import { makeEntry } from './fixtures/log-store-entries.js';

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = join(here, '..', '..');
const child = join(here, 'fixtures', 'log-store-child.ts');
const root = mkdtempSync(join(tmpdir(), 'replisql-log-store-proc-'));
after(() => rmSync(root, { recursive: true, force: true }));

interface Running {
  proc: ChildProcess;
  lines: string[];
  stderr: string[];
  exited: Promise<number | null>;
  waitFor(pred: (line: string) => boolean, timeoutMs: number): Promise<string>;
}

function run(...args: string[]): Running {
  const proc = spawn(process.execPath, ['--import', 'tsx', child, ...args], { cwd: repoRoot, stdio: ['pipe', 'pipe', 'pipe'] });
  const lines: string[] = [];
  const stderr: string[] = [];
  let partial = '';
  const waiters: (() => void)[] = [];
  proc.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    const parts = (partial + chunk).split('\n');
    partial = parts.pop()!;
    lines.push(...parts);
    for (const w of waiters.splice(0)) w();
  });
  proc.stderr!.setEncoding('utf8').on('data', (chunk: string) => stderr.push(chunk));
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => {
    for (const w of waiters.splice(0)) w();
    resolve(code);
  }));
  const waitFor = (pred: (line: string) => boolean, timeoutMs: number): Promise<string> =>
    new Promise((resolve, reject) => {
      const deadline = setTimeout(() => reject(new Error(`timed out; stdout=${lines.join('|')} stderr=${stderr.join('')}`)), timeoutMs);
      const check = (): void => {
        const hit = lines.find(pred);
        if (hit !== undefined) {
          clearTimeout(deadline);
          resolve(hit);
        } else if (proc.exitCode !== null || proc.signalCode !== null) {
          clearTimeout(deadline);
          reject(new Error(`child exited (${proc.exitCode ?? proc.signalCode}); stdout=${lines.join('|')} stderr=${stderr.join('')}`));
        } else waiters.push(check);
      };
      check();
    });
  return { proc, lines, stderr, exited, waitFor };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('FileLogStore with real processes', () => {
  it('keeps every synced entry intact when the writer is killed with SIGKILL at random moments', async () => {
    const dir = join(root, 'crash');
    const rounds = 6;
    let totalSynced = 0;
    for (let round = 0; round < rounds; round++) {
      const w = run('writer', dir, String(32 * 1024));
      await w.waitFor((l) => l.startsWith('synced '), 20_000);
      await sleep(20 + Math.floor(Math.random() * 300));
      w.proc.kill('SIGKILL');
      await w.exited;
      const synced = w.lines.filter((l) => l.startsWith('synced ')).map((l) => Number(l.slice(7)));
      const lastSynced = synced.at(-1)!;
      totalSynced = lastSynced;

      const warnings: string[] = [];
      const store = FileLogStore.open(dir, { segmentMaxBytes: 32 * 1024, onWarning: (m) => warnings.push(m) });
      const { base, entries } = store.load();
      assert.ok(warnings.every((m) => /stale lock|torn tail/.test(m)), warnings.join('\n'));
      assert.ok(store.lastIndex() >= lastSynced, `round ${round}: synced up to ${lastSynced}, recovered only up to ${store.lastIndex()}`);
      assert.ok(base.index < lastSynced, `round ${round}: base ${base.index} swallowed synced entries`);
      if (base.index > 0) assert.deepEqual(base, { index: base.index, term: 1, chainHash: makeEntry(base.index).chainHash });
      assert.equal(entries[0]?.index, base.index + 1);
      for (const e of entries) assert.deepEqual(e, makeEntry(e.index), `round ${round}: entry ${e.index} differs`);
      store.close();
    }
    assert.ok(totalSynced > 0);
  });

  it('refuses a second open from another process while the first is open, and releases on close', async () => {
    const dir = join(root, 'lock1');
    const store = FileLogStore.open(dir, { onWarning: () => {} });
    const p = run('probe', dir);
    const line = await p.waitFor((l) => l.startsWith('error') || l === 'opened', 20_000);
    await p.exited;
    assert.match(line, /^error LOG_LOCKED .*locked by live process pid \d+/);
    assert.ok(line.includes(String(process.pid)), line);
    store.close();
    const p2 = run('probe', dir);
    assert.equal(await p2.waitFor((l) => l.startsWith('error') || l === 'opened', 20_000), 'opened');
    await p2.exited;
  });

  it('refuses to open while another process holds the lock, takes it over once that process is killed', async () => {
    const dir = join(root, 'lock2');
    const h = run('hold', dir);
    await h.waitFor((l) => l === 'opened', 20_000);
    let err: unknown;
    try {
      FileLogStore.open(dir, { onWarning: () => {} });
    } catch (e) {
      err = e;
    }
    assert.equal((err as { code?: string }).code, 'LOG_LOCKED', String(err));
    h.proc.kill('SIGKILL');
    await h.exited;
    const warnings: string[] = [];
    const store = FileLogStore.open(dir, { onWarning: (m) => warnings.push(m) });
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!, /stale lock left by pid \d+/);
    store.close();
    assert.equal(existsSync(join(dir, 'LOCK')), false);
  });

  it('refuses a second open in the same process, takes over a stale lock that carries our own pid', () => {
    const dir = join(root, 'lock3');
    const store = FileLogStore.open(dir, { onWarning: () => {} });
    assert.throws(() => FileLogStore.open(dir, { onWarning: () => {} }), /already open in this process/);
    store.close();
    // A previous incarnation of this node had the same pid (common for pid 1 in containers).
    writeFileSync(join(dir, 'LOCK'), `${process.pid}\n\n`);
    const warnings: string[] = [];
    FileLogStore.open(dir, { onWarning: (m) => warnings.push(m) }).close();
    assert.equal(warnings.length, 1);
  });
});
