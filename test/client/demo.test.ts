// `replisql demo` process management, with a stand-in node program (the real runtime is built in
// parallel): children are started with the config, a crash is reported and not restarted, and
// SIGINT stops every node with SIGTERM and waits for them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

const FAKE_NODE = `
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
const [configPath, idText] = process.argv.slice(2);
const id = Number(idText);
const config = JSON.parse(readFileSync(configPath, 'utf8'));
const me = config.nodes.find((n) => n.id === id);
const server = createServer((s) => s.end()).listen(me.port, me.host, () => console.log('node ' + id + ' up on ' + me.port));
process.on('SIGTERM', () => { console.log('node ' + id + ' got SIGTERM'); server.close(); setTimeout(() => process.exit(0), 100); });
if (process.env.FAKE_CRASH_ID === idText) setTimeout(() => process.exit(3), 500);
setTimeout(() => process.exit(9), 30000).unref(); // never outlive a failed test
`;

function setup(): { dir: string; wrapper: string } {
  const dir = mkdtempSync(join(tmpdir(), 'replisql-demo-test-'));
  const fakeNode = join(dir, 'fake-node.mjs');
  writeFileSync(fakeNode, FAKE_NODE);
  const wrapper = join(dir, 'run-demo.mts');
  writeFileSync(
    wrapper,
    `import { runDemo } from ${JSON.stringify(join(root, 'src', 'cli', 'demo.ts'))};\n` +
      `const [dir, nodes, basePort] = process.argv.slice(2);\n` +
      `process.exitCode = await runDemo({ dir, nodes: Number(nodes), basePort: Number(basePort),\n` +
      `  nodeArgs: (configPath, id) => [${JSON.stringify(fakeNode)}, configPath, String(id)] });\n`,
  );
  return { dir, wrapper };
}

interface Demo {
  readonly child: ChildProcess;
  output(): string;
  waitFor(re: RegExp, timeoutMs?: number): Promise<void>;
  exited: Promise<number | null>;
}

function startDemo(wrapper: string, dir: string, nodes: number, basePort: number, env: Record<string, string> = {}): Demo {
  const child = spawn(process.execPath, ['--import', 'tsx', wrapper, join(dir, 'demo-data'), String(nodes), String(basePort)], {
    cwd: root,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((res) => child.on('close', (code) => res(code)));
  return {
    child,
    output: () => out,
    exited,
    waitFor: async (re, timeoutMs = 15_000) => {
      const until = Date.now() + timeoutMs;
      while (!re.test(out)) {
        if (Date.now() > until) throw new Error(`timed out waiting for ${re}; output so far:\n${out}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
  };
}

async function freeBasePort(n: number): Promise<number> {
  // Find n consecutive free ports (best effort: probe a random range).
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * 30_000);
    let ok = true;
    for (let p = base; p < base + n && ok; p++) {
      ok = await new Promise<boolean>((res) => {
        const s = createServer();
        s.once('error', () => res(false));
        s.listen(p, '127.0.0.1', () => s.close(() => res(true)));
      });
    }
    if (ok) return base;
  }
  throw new Error('no free port range');
}

test('demo starts every node, reports a crash without restarting it, and stops the rest on SIGINT', async () => {
  const { dir, wrapper } = setup();
  const base = await freeBasePort(3);
  const demo = startDemo(wrapper, dir, 3, base, { FAKE_CRASH_ID: '2' });
  try {
    await demo.waitFor(/Press Ctrl-C to stop every node/);
    await demo.waitFor(new RegExp(`\\[node 1\\] node 1 up on ${base}`));
    await demo.waitFor(new RegExp(`\\[node 3\\] node 3 up on ${base + 2}`));
    const out = demo.output();
    assert.match(out, new RegExp(`client --connect 127\\.0\\.0\\.1:${base},127\\.0\\.0\\.1:${base + 1},127\\.0\\.0\\.1:${base + 2}`));
    assert.match(out, /status --connect/);
    assert.match(out, new RegExp(`mysql 127\\.0\\.0\\.1:${base + 100}`), 'each node shows its MySQL port');
    assert.match(out, new RegExp(`mariadb -h 127\\.0\\.0\\.1 -P ${base + 100} -u root main`));
    assert.match(out, /Logs: .*demo-data\/logs\/node<ID>\.log/);

    await demo.waitFor(/\[demo\] node 2 \(pid \d+\) exited unexpectedly \(code 3\); 2 other node\(s\) keep running/);
    await new Promise((r) => setTimeout(r, 300));
    assert.doesNotMatch(demo.output(), /node 2 up on .*[\s\S]*node 2 up on/, 'not restarted');

    demo.child.kill('SIGINT');
    const code = await demo.exited;
    const final = demo.output();
    assert.match(final, /\[demo\] SIGINT: stopping 2 node\(s\)/);
    assert.match(final, /\[node 1\] node 1 got SIGTERM/);
    assert.match(final, /\[node 3\] node 3 got SIGTERM/);
    assert.match(final, /\[demo\] node 1 stopped \(code 0\)/);
    assert.match(final, /\[demo\] node 3 stopped \(code 0\)/);
    assert.equal(code, 1, 'a node crashed during the demo');
  } finally {
    demo.child.kill('SIGKILL');
  }
});

test('demo: a clean Ctrl-C exits 0; a busy port is refused before anything starts', async () => {
  const { dir, wrapper } = setup();
  const base = await freeBasePort(2);
  const demo = startDemo(wrapper, dir, 2, base);
  try {
    await demo.waitFor(new RegExp(`\\[node 2\\] node 2 up on ${base + 1}`));
    // While it runs, a second demo on the same ports must refuse to start.
    const second = startDemo(wrapper, dir, 2, base);
    assert.equal(await second.exited, 1);
    assert.match(second.output(), new RegExp(`port ${base} on 127\\.0\\.0\\.1 is already in use`));

    demo.child.kill('SIGTERM');
    assert.equal(await demo.exited, 0, demo.output());
    assert.match(demo.output(), /\[demo\] node 2 stopped \(code 0\)/);
  } finally {
    demo.child.kill('SIGKILL');
  }
});

test('demo refuses to reuse a data folder that holds a different cluster shape', async () => {
  const { dir, wrapper } = setup();
  const base = await freeBasePort(3);
  const first = startDemo(wrapper, dir, 2, base);
  await first.waitFor(/node 2 up/);
  first.child.kill('SIGINT');
  await first.exited;
  // The fake nodes do not create data/, so create it as a real node would.
  const { mkdirSync } = await import('node:fs');
  mkdirSync(join(dir, 'demo-data', 'data'), { recursive: true });
  const other = startDemo(wrapper, dir, 3, base);
  assert.notEqual(await other.exited, 0);
  assert.match(other.output(), /already holds a 2-node demo cluster .* would not be the same cluster/);
});
