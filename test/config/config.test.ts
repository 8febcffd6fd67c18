import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, readFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, writeDemoConfig, msToTicks } from '../../src/config/load.js';
import { parseConfig } from '../../src/config/config.js';
import { suggestName } from '../../src/config/suggest.js';
import { isLoopbackHost } from '../../src/config/hosts.js';
import { findNode, type ResolvedStorage } from '../../src/config/resolved.js';
import { ConfigError } from '../../src/errors.js';

const node = (id: number, port = 7000 + id, host = '127.0.0.1') => ({
  id,
  host,
  port,
  storage: { engine: 'sqlite', path: `data/node${id}.db` },
});
const base = (extra: Record<string, unknown> = {}) => ({ cluster: 'demo', nodes: [node(1), node(2), node(3)], ...extra });

/** The problems a config produces, one per line, with the file label stripped. */
function problems(raw: unknown): string[] {
  try {
    parseConfig(raw, { configPath: '/etc/replisql/config.json', label: 'config.json' });
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    assert.equal(err.code, 'INVALID_CONFIG');
    const lines = err.message.split('\n');
    for (const l of lines) assert.ok(l.startsWith('config.json: '), l);
    return lines.map((l) => l.slice('config.json: '.length));
  }
  return [];
}

function hasProblem(raw: unknown, re: RegExp): void {
  const list = problems(raw);
  assert.ok(list.some((p) => re.test(p)), `no problem matching ${re} in:\n${list.join('\n')}`);
}

test('a minimal config gets the documented defaults and absolute paths', () => {
  const c = parseConfig(base(), { configPath: '/etc/replisql/config.json' });
  assert.equal(c.cluster, 'demo');
  assert.equal(c.heartbeatIntervalMs, 2000);
  assert.equal(c.failureTimeoutMs, 10_000);
  assert.equal(c.writeAck, 'quorum');
  assert.equal(c.readConsistency, 'session');
  assert.equal(c.maxReadStalenessMs, 1000);
  assert.equal(c.tickMs, 100);
  assert.equal(c.writeTimeoutMs, 15_000);
  assert.equal(c.maxFrameBytes, 16_777_216);
  assert.equal(c.logDir, '/etc/replisql/logs');
  assert.equal(c.configDir, '/etc/replisql');
  assert.equal(c.heartbeatIntervalTicks, 20);
  assert.equal(c.failureTimeoutTicks, 100);
  assert.equal(c.writeTimeoutTicks, 150);
  assert.deepEqual(c.warnings, []);
  assert.deepEqual(c.nodes[1], {
    id: 2,
    host: '127.0.0.1',
    port: 7002,
    storage: { engine: 'sqlite', path: '/etc/replisql/data/node2.db' },
    dataDir: '/etc/replisql/data/node2',
    mysqlPort: null,
  });
  assert.deepEqual(c.mysqlUsers, []);
  assert.equal(c.mysqlDatabase, null);
  assert.equal(c.transactionIdleTimeoutMs, 10_000);
});

test('MySQL front end: mysqlPort needs mysqlUsers; users take exactly one of password/passwordEnv; ports must not collide', () => {
  const parse = (raw: Record<string, unknown>, env: Record<string, string> = {}) => parseConfig(raw, { configPath: '/etc/replisql/config.json', env });
  const problems = (raw: Record<string, unknown>, env: Record<string, string> = {}): string => {
    try {
      parse(raw, env);
    } catch (err) {
      return (err as Error).message;
    }
    assert.fail('expected the config to be refused');
  };
  const withPort = { ...base(), nodes: [{ ...node(1), mysqlPort: 3307 }, node(2), node(3)] };
  assert.match(problems(withPort), /mysqlUsers: missing; nodes\[0\]\.mysqlPort opens a MySQL front end/);
  const ok = parse({ ...withPort, mysqlUsers: [{ user: 'app', passwordEnv: 'APP_PW' }, { user: 'root', password: '' }], mysqlDatabase: 'shop', transactionIdleTimeoutMs: 2500 }, { APP_PW: 's3cret' });
  assert.equal(ok.nodes[0]!.mysqlPort, 3307);
  assert.equal(ok.nodes[1]!.mysqlPort, null);
  assert.deepEqual(ok.mysqlUsers, [{ user: 'app', password: 's3cret' }, { user: 'root', password: '' }]);
  assert.equal(ok.mysqlDatabase, 'shop');
  assert.equal(ok.transactionIdleTimeoutMs, 2500);
  assert.match(problems({ ...withPort, mysqlUsers: [{ user: 'app', passwordEnv: 'APP_PW' }] }), /mysqlUsers\[0\]\.passwordEnv: environment variable APP_PW is not set/);
  assert.match(problems({ ...withPort, mysqlUsers: [{ user: 'app' }] }), /mysqlUsers\[0\]: give exactly one of "password"/);
  assert.match(problems({ ...withPort, mysqlUsers: [{ user: 'a', password: 'x' }, { user: 'a', password: 'y' }] }), /mysqlUsers\[1\]\.user: duplicate user "a"/);
  const clash = { ...base(), mysqlUsers: [{ user: 'a', password: '' }], nodes: [{ ...node(1), mysqlPort: node(2).port }, node(2), node(3)] };
  assert.match(problems(clash), /the MySQL front end needs a port of its own/);
  assert.match(problems({ ...withPort, mysqlUsers: [{ user: 'a', password: '' }], mysqlDatabase: 'bad name' }), /mysqlDatabase/);
});

test('relative paths resolve against the config file folder, not the working directory; absolute ones are kept', () => {
  const dir = mkdtempSync(join(tmpdir(), 'replisql-config-'));
  mkdirSync(join(dir, 'sub'));
  const path = join(dir, 'sub', 'config.json');
  writeFileSync(
    path,
    JSON.stringify({
      cluster: 'c',
      logDir: '../logs',
      nodes: [
        { ...node(1), storage: { engine: 'sqlite', path: 'db/one.db' }, dataDir: '/var/lib/replisql/n1' },
        { ...node(2), storage: { engine: 'sqlite', path: '/srv/two.db' } },
      ],
    }),
  );
  const c = loadConfig(path);
  assert.equal(c.configPath, path);
  assert.equal(c.logDir, join(dir, 'logs'));
  assert.equal(sqlitePath(c.nodes[0]!.storage), join(dir, 'sub', 'db', 'one.db'));
  assert.equal(c.nodes[0]!.dataDir, '/var/lib/replisql/n1');
  assert.equal(sqlitePath(c.nodes[1]!.storage), '/srv/two.db');
  assert.equal(c.nodes[1]!.dataDir, '/srv/node2', 'default dataDir: <folder of storage path>/node<ID>');
});

test('field types and ranges: the message names the field, the expectation and what was found', () => {
  hasProblem(base({ nodes: [node(1), node(2, 70000)] }), /^nodes\[1\]\.port: expected an integer between 1 and 65535, got 70000$/);
  hasProblem(base({ nodes: [node(1), { ...node(2), port: '7002' }] }), /^nodes\[1\]\.port: expected an integer between 1 and 65535, got "7002" \(a string\)$/);
  hasProblem(base({ nodes: [{ ...node(1), id: 0 }] }), /^nodes\[0\]\.id: expected an integer between 1 and/);
  hasProblem(base({ nodes: [{ ...node(1), id: 1.5 }] }), /^nodes\[0\]\.id: expected an integer/);
  hasProblem(base({ tickMs: 0 }), /^tickMs: expected an integer between 1 and 10000, got 0$/);
  hasProblem(base({ writeAck: 'majority' }), /^writeAck: expected one of "one", "quorum", "all", "all-applied", got "majority"/);
  hasProblem(base({ readConsistency: 'strong' }), /^readConsistency: expected one of "local", "session", "bounded", "linearizable", got "strong"/);
  hasProblem(base({ maxReadStalenessMs: -1 }), /^maxReadStalenessMs: expected an integer between 0 and 86400000, got -1$/);
  hasProblem(base({ maxFrameBytes: 10 }), /^maxFrameBytes: expected an integer between 1048576 and 268435456, got 10$/);
  hasProblem(base({ cluster: '' }), /^cluster: expected 1-64 characters/);
  hasProblem({ nodes: [node(1)] }, /^cluster: missing; expected the cluster name/);
  hasProblem({ cluster: 'x' }, /^nodes: missing; expected an array of nodes/);
  hasProblem({ cluster: 'x', nodes: [] }, /^nodes: expected between 1 and 15 nodes, got \[\]/);
  hasProblem({ cluster: 'x', nodes: Array.from({ length: 16 }, (_, i) => node(i + 1)) }, /^nodes: expected between 1 and 15 nodes/);
  hasProblem(base({ nodes: [{ ...node(1), storage: { engine: 'mariadb' } }] }), /^nodes\[0\]\.storage\.engine: expected one of "sqlite", "mysql", got "mariadb".*write "mysql".*MariaDB alike/);
  hasProblem(base({ nodes: [{ ...node(1), storage: {} }] }), /^nodes\[0\]\.storage\.engine: missing; expected one of "sqlite", "mysql"/);
  hasProblem(base({ nodes: [{ ...node(1), storage: { engine: 'sqlite' } }] }), /^nodes\[0\]\.storage\.path: missing; expected a path/);
  hasProblem(base({ nodes: [{ ...node(1), host: '' }] }), /^nodes\[0\]\.host: expected a non-empty host name/);
  assert.match(problems([1, 2])[0]!, /expected a JSON object at the top level/);
});

test('every problem is listed at once', () => {
  const list = problems({ cluster: 'x', tickMs: -1, heartbeatMs: 1, nodes: [node(1, 0), node(1)] });
  assert.ok(list.length >= 4, list.join('\n'));
  assert.ok(list.some((p) => p.startsWith('tickMs:')));
  assert.ok(list.some((p) => p.startsWith('nodes[0].port:')));
  assert.ok(list.some((p) => p.includes("unknown field 'heartbeatMs'")));
  assert.ok(list.some((p) => p.includes('duplicate node id 1')));
});

test('unknown fields are refused with a did-you-mean suggestion', () => {
  hasProblem(base({ heartbeatMs: 2000 }), /^unknown field 'heartbeatMs'; did you mean 'heartbeatIntervalMs'\?$/);
  hasProblem(base({ failureTimeout: 2000 }), /did you mean 'failureTimeoutMs'\?/);
  hasProblem(base({ writeack: 'all' }), /did you mean 'writeAck'\?/);
  hasProblem(base({ zzzzzz: 1 }), /^unknown field 'zzzzzz'; known fields: cluster, heartbeatIntervalMs/);
  hasProblem(base({ nodes: [{ ...node(1), prot: 1 }] }), /^nodes\[0\]: unknown field 'prot'; did you mean 'port'\?$/);
  hasProblem(base({ nodes: [{ ...node(1), storage: { engine: 'sqlite', path: 'a.db', paht: 'b' } }] }), /^nodes\[0\]\.storage: unknown field 'paht'; did you mean 'path'\?$/);
  assert.equal(suggestName('datadir', ['dataDir', 'storage']), 'dataDir');
  assert.equal(suggestName('qqq', ['dataDir', 'storage']), null);
});

test('duplicate node ids are refused, naming both entries', () => {
  hasProblem(base({ nodes: [node(1), node(2), { ...node(1), port: 7009 }] }), /^nodes\[2\]\.id: duplicate node id 1 \(also nodes\[0\]\)/);
});

test('duplicate host:port is refused (loopback spellings count as one address)', () => {
  hasProblem(base({ nodes: [node(1), node(2, 7001)] }), /^nodes\[1\]: duplicate address 127\.0\.0\.1:7001 \(also nodes\[0\]\)/);
  hasProblem(base({ nodes: [node(1), node(2, 7001, 'localhost')] }), /^nodes\[1\]: duplicate address localhost:7001 \(also nodes\[0\]\)/);
  assert.deepEqual(problems({ cluster: 'x', nodes: [node(1, 7001, '10.0.0.1'), node(2, 7001, '10.0.0.2')] }), []);
});

test('two nodes on one host may not share a database file or log folder; on different hosts they may', () => {
  const same = { engine: 'sqlite', path: 'data/replisql.db' };
  hasProblem(
    { cluster: 'x', nodes: [{ ...node(1), storage: same }, { ...node(2), storage: same }] },
    /^nodes\[1\]\.storage\.path: same database file as nodes\[0\] on the same host/,
  );
  hasProblem(
    { cluster: 'x', nodes: [{ ...node(1), dataDir: 'log' }, { ...node(2), dataDir: 'log' }] },
    /^nodes\[1\]\.dataDir: same log folder as nodes\[0\]/,
  );
  assert.deepEqual(
    problems({ cluster: 'x', nodes: [{ ...node(1, 7001, '10.0.0.1'), storage: same }, { ...node(2, 7001, '10.0.0.2'), storage: same }] }),
    [],
  );
});

test('failureTimeoutMs must be at least twice heartbeatIntervalMs, and the message says why', () => {
  hasProblem(
    base({ heartbeatIntervalMs: 2000, failureTimeoutMs: 3000 }),
    /^failureTimeoutMs: must be at least 2 x heartbeatIntervalMs \(2 x 2000 = 4000\), got 3000; .*late heartbeat marks a healthy node offline/,
  );
  assert.deepEqual(problems(base({ heartbeatIntervalMs: 2000, failureTimeoutMs: 4000 })), []);
});

test('heartbeatIntervalMs must be a multiple of tickMs; other durations are rounded up with a warning', () => {
  hasProblem(base({ heartbeatIntervalMs: 2050 }), /^heartbeatIntervalMs: must be a multiple of tickMs \(100\), got 2050; use 2000 or 2100/);
  hasProblem(base({ heartbeatIntervalMs: 50, failureTimeoutMs: 1000 }), /got 50; use 100 \(/);
  const c = parseConfig(base({ failureTimeoutMs: 10_050, writeTimeoutMs: 15_001 }), { configPath: '/x/config.json', label: 'config.json' });
  assert.equal(c.failureTimeoutTicks, 101);
  assert.equal(c.writeTimeoutTicks, 151);
  assert.equal(c.warnings.length, 2);
  assert.match(c.warnings[0]!, /failureTimeoutMs: 10050 is not a multiple of tickMs \(100\); rounded up to 10100 ms/);
});

test('mixing loopback and real addresses is refused with the original system\'s explanation', () => {
  const list = problems({ cluster: 'x', nodes: [node(1, 7001, '127.0.0.1'), node(2, 7002, '192.168.1.20'), node(3, 7003, 'localhost')] });
  const p = list.find((l) => l.startsWith('nodes: mixes loopback'));
  assert.ok(p, list.join('\n'));
  assert.match(p, /nodes\[0\]\.host "127\.0\.0\.1", nodes\[2\]\.host "localhost"/);
  assert.match(p, /nodes\[1\]\.host "192\.168\.1\.20"/);
  assert.match(p, /talks to itself instead of its peer/);
  assert.match(p, /use each machine's real address/);
  // All loopback (one machine) and all real addresses are both fine.
  assert.deepEqual(problems(base()), []);
  assert.deepEqual(problems({ cluster: 'x', nodes: [node(1, 7001, '10.0.0.1'), node(2, 7001, 'db2.example.com')] }), []);
  for (const h of ['127.0.0.1', '127.1.2.3', 'localhost', 'LOCALHOST', 'foo.localhost', '::1', '::ffff:127.0.0.1']) {
    assert.ok(isLoopbackHost(h), h);
  }
  for (const h of ['10.0.0.1', '128.0.0.1', 'example.com', '::2']) assert.ok(!isLoopbackHost(h), h);
});

test('hosts that peers cannot connect to are refused', () => {
  hasProblem(base({ nodes: [node(1, 7001, '0.0.0.0')] }), /^nodes\[0\]\.host: "0\.0\.0\.0" means "listen on every interface"/);
  hasProblem(base({ nodes: [node(1, 7001, 'db1:7001')] }), /^nodes\[0\]\.host: "db1:7001" contains a port/);
  hasProblem(base({ nodes: [node(1, 7001, 'bad host')] }), /^nodes\[0\]\.host: "bad host" is neither an IP address nor a valid host name/);
});

test('"~" in paths is refused rather than silently creating a folder named ~', () => {
  hasProblem(base({ nodes: [{ ...node(1), storage: { engine: 'sqlite', path: '~/r.db' } }] }), /^nodes\[0\]\.storage\.path: "~" is not expanded/);
  hasProblem(base({ logDir: '~/logs' }), /^logDir: "~" is not expanded/);
});

test('loadConfig: missing file, invalid JSON (with line and column), and the file name in every message', () => {
  const dir = mkdtempSync(join(tmpdir(), 'replisql-config-'));
  assert.throws(() => loadConfig(join(dir, 'nope.json')), (e: unknown) => {
    assert.ok(e instanceof ConfigError);
    assert.match(e.message, /nope\.json: cannot read the config file: ENOENT.*replisql demo/);
    return true;
  });
  const bad = join(dir, 'bad.json');
  writeFileSync(bad, '{\n  "cluster": "x",\n  "nodes": [],\n}\n');
  assert.throws(() => loadConfig(bad), /bad\.json: not valid JSON at line 4, column 1: .*trailing commas/);
  const invalid = join(dir, 'invalid.json');
  writeFileSync(invalid, JSON.stringify(base({ tickMs: 0 })));
  assert.throws(() => loadConfig(invalid), (e: unknown) => {
    assert.match((e as Error).message, new RegExp(`^${invalid.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: tickMs: `));
    return true;
  });
});

test('writeDemoConfig writes a valid loopback config and returns its path', () => {
  const dir = join(mkdtempSync(join(tmpdir(), 'replisql-demo-')), 'demo-data');
  const path = writeDemoConfig(dir, 5, 7101);
  assert.equal(path, join(dir, 'config.json'));
  const raw = JSON.parse(readFileSync(path, 'utf8'));
  assert.equal(raw.nodes.length, 5);
  const c = loadConfig(path);
  assert.deepEqual(c.nodes.map((n) => n.port), [7101, 7102, 7103, 7104, 7105]);
  assert.deepEqual(c.nodes.map((n) => n.mysqlPort), [7201, 7202, 7203, 7204, 7205], 'every demo node has a MySQL port');
  assert.deepEqual(c.mysqlUsers, [{ user: 'root', password: '' }]);
  assert.equal(sqlitePath(c.nodes[4]!.storage), join(dir, 'data', 'node5.db'));
  assert.equal(c.nodes[4]!.dataDir, join(dir, 'data', 'node5'));
  assert.equal(c.logDir, join(dir, 'logs'));
  assert.throws(() => writeDemoConfig(dir, 16, 7001), /--nodes must be an integer between 1 and 15/);
  assert.throws(() => writeDemoConfig(dir, 3, 65534), /--base-port must leave room for 3 ports/);
  assert.throws(() => writeDemoConfig(dir, 3, 65450), /and 3 MySQL ports 100 above them/);
});

test('msToTicks rounds up to whole ticks, at least one', () => {
  assert.equal(msToTicks(2000, 100), 20);
  assert.equal(msToTicks(2001, 100), 21);
  assert.equal(msToTicks(1, 100), 1);
  assert.equal(msToTicks(0, 100), 1);
  assert.throws(() => msToTicks(100, 0), RangeError);
});

test('findNode names the configured ids when the id is unknown', () => {
  const c = parseConfig(base(), { configPath: '/x/config.json' });
  assert.equal(findNode(c, 2).port, 7002);
  assert.throws(() => findNode(c, 9), /node id 9 is not configured \(configured ids: 1, 2, 3\)/);
});

function sqlitePath(s: ResolvedStorage): string {
  assert.equal(s.engine, 'sqlite');
  return s.engine === 'sqlite' ? s.path : '';
}
