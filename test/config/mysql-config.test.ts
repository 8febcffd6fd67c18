// MySQL/MariaDB storage in config.json: fields or URL, password or passwordEnv, one database per
// node, and the password never printed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config/load.js';
import { parseConfig } from '../../src/config/config.js';
import { parseMysqlUrl } from '../../src/config/url.js';
import { redactConfig, redactUrl, REDACTED } from '../../src/config/redact.js';
import { describeStorage, type ConfigEnv, type ResolvedConfig, type ResolvedMysqlStorage } from '../../src/config/resolved.js';
import { ConfigError } from '../../src/errors.js';

const SECRET = 'S3cr3t-pw!';
const ENV: ConfigEnv = { REPLISQL_DB_PASSWORD: SECRET, OTHER_PW: 'other-secret' };

const mysql = (extra: Record<string, unknown> = {}) => ({
  engine: 'mysql',
  host: 'db1',
  port: 3306,
  user: 'replisql',
  passwordEnv: 'REPLISQL_DB_PASSWORD',
  database: 'replisql',
  ...extra,
});
/** Node `id` on host 10.0.0.<id>, port 7001, with its own MySQL server db<id>. */
const node = (id: number, storage: Record<string, unknown> = mysql({ host: `db${id}` }), host = `10.0.0.${id}`, port = 7001) => ({
  id,
  host,
  port,
  storage,
});
const cfg = (nodes: unknown[], extra: Record<string, unknown> = {}) => ({ cluster: 'prod', nodes, ...extra });
const three = () => cfg([node(1), node(2), node(3)]);

function parse(raw: unknown, env: ConfigEnv = ENV): ResolvedConfig {
  return parseConfig(raw, { configPath: '/etc/replisql/config.json', label: 'config.json', env });
}

/** The problems a config produces, one per line, with the file label stripped. */
function problems(raw: unknown, env: ConfigEnv = ENV): string[] {
  try {
    parse(raw, env);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    assert.equal(err.code, 'INVALID_CONFIG');
    const lines = err.message.split('\n');
    for (const l of lines) assert.ok(l.startsWith('config.json: '), l);
    return lines.map((l) => l.slice('config.json: '.length));
  }
  return [];
}

function hasProblem(raw: unknown, re: RegExp, env: ConfigEnv = ENV): string[] {
  const list = problems(raw, env);
  assert.ok(list.some((p) => re.test(p)), `no problem matching ${re} in:\n${list.join('\n')}`);
  return list;
}

function storageOf(raw: unknown, index = 0, env: ConfigEnv = ENV): ResolvedMysqlStorage {
  const s = parse(raw, env).nodes[index]!.storage;
  assert.equal(s.engine, 'mysql');
  return s as ResolvedMysqlStorage;
}

test('fields form: resolves to exactly {engine, host, port, user, password, database, socketPath}, password read from the environment', () => {
  const c = parse(three());
  const s = c.nodes[1]!.storage;
  assert.deepEqual(s, { engine: 'mysql', host: 'db2', port: 3306, user: 'replisql', password: SECRET, database: 'replisql', socketPath: null });
  assert.deepEqual(Object.keys(s).sort(), ['database', 'engine', 'host', 'password', 'port', 'socketPath', 'user']);
  // socketPath resolves against the config file's folder.
  const withSocket = three();
  (withSocket.nodes as Record<string, unknown>[])[0]!['storage'] = { ...((withSocket.nodes as Record<string, unknown>[])[0]!['storage'] as object), socketPath: 'run/mysqld.sock' };
  assert.equal(storageOf(withSocket).socketPath, '/etc/replisql/run/mysqld.sock');
  // No database file to put the log beside: <config folder>/data/node<ID>, or dataDir when given.
  assert.equal(c.nodes[1]!.dataDir, '/etc/replisql/data/node2');
  const withDir = parse(cfg([{ ...node(1), dataDir: '/var/lib/replisql/node1' }]));
  assert.equal(withDir.nodes[0]!.dataDir, '/var/lib/replisql/node1');
});

test('port defaults to 3306; a literal password is accepted (passwordEnv is preferred)', () => {
  const { port: _port, ...noPort } = mysql();
  void _port;
  assert.equal(storageOf(cfg([node(1, noPort)])).port, 3306);
  const { passwordEnv: _env, ...noEnv } = mysql();
  void _env;
  assert.equal(storageOf(cfg([node(1, { ...noEnv, password: 'literal' })]), 0, {}).password, 'literal');
  assert.equal(storageOf(cfg([node(1, mysql({ port: 3307 }))])).port, 3307);
});

test('passwordEnv: an unset or empty variable is refused, naming the variable; a bad name is refused', () => {
  const list = hasProblem(three(), /^nodes\[0\]\.storage\.passwordEnv: environment variable REPLISQL_DB_PASSWORD is not set; set it to this node's database password/, {});
  assert.equal(list.filter((p) => p.includes('is not set')).length, 3, 'one message per node');
  hasProblem(three(), /^nodes\[0\]\.storage\.passwordEnv: environment variable REPLISQL_DB_PASSWORD is set but empty/, { REPLISQL_DB_PASSWORD: '' });
  hasProblem(cfg([node(1, mysql({ passwordEnv: '1PASSWORD' }))]), /^nodes\[0\]\.storage\.passwordEnv: expected an environment variable name/);
  hasProblem(cfg([node(1, mysql({ passwordEnv: 'A-B' }))]), /^nodes\[0\]\.storage\.passwordEnv: expected an environment variable name.*got "A-B"/);
  // Different variables per node work too.
  const c = parse(cfg([node(1), node(2, mysql({ host: 'db2', passwordEnv: 'OTHER_PW' }))]));
  assert.equal((c.nodes[1]!.storage as ResolvedMysqlStorage).password, 'other-secret');
});

test('exactly one of password and passwordEnv', () => {
  hasProblem(
    cfg([node(1, mysql({ password: 'x' }))]),
    /^nodes\[0\]\.storage: both "password" and "passwordEnv" are given; keep exactly one/,
  );
  const { passwordEnv: _e, ...none } = mysql();
  void _e;
  hasProblem(cfg([node(1, none)]), /^nodes\[0\]\.storage: missing the password; give "passwordEnv" .* or "password"$/);
});

test('host, user and database are required, named one per message; bad values are refused with the rule', () => {
  const list = problems(cfg([node(1, { engine: 'mysql', passwordEnv: 'REPLISQL_DB_PASSWORD' })]));
  assert.ok(list.some((p) => /^nodes\[0\]\.storage\.host: missing; expected the database server's host name or IP address .*"url"/.test(p)), list.join('\n'));
  assert.ok(list.some((p) => /^nodes\[0\]\.storage\.user: missing; expected the MySQL user name$/.test(p)), list.join('\n'));
  assert.ok(list.some((p) => /^nodes\[0\]\.storage\.database: missing; expected the name of this node's database/.test(p)), list.join('\n'));
  hasProblem(cfg([node(1, mysql({ database: 'my-db' }))]), /^nodes\[0\]\.storage\.database: expected a database name of 1-64 characters among A-Z a-z 0-9 _ \$.*got "my-db"/);
  hasProblem(cfg([node(1, mysql({ database: 'x'.repeat(65) }))]), /^nodes\[0\]\.storage\.database: expected a database name/);
  hasProblem(cfg([node(1, mysql({ port: 0 }))]), /^nodes\[0\]\.storage\.port: expected an integer between 1 and 65535, got 0$/);
  hasProblem(cfg([node(1, mysql({ port: '3306' }))]), /^nodes\[0\]\.storage\.port: expected an integer between 1 and 65535, got "3306" \(a string\)$/);
  hasProblem(cfg([node(1, mysql({ user: '' }))]), /^nodes\[0\]\.storage\.user: expected a non-empty MySQL user name/);
  hasProblem(cfg([node(1, mysql({ user: 'a\nb' }))]), /^nodes\[0\]\.storage\.user: expected a MySQL user name without control characters/);
  hasProblem(cfg([node(1, mysql({ host: '0.0.0.0' }))]), /^nodes\[0\]\.storage\.host: "0\.0\.0\.0" means "listen on every interface", it is not an address a node can connect to/);
  hasProblem(cfg([node(1, mysql({ host: 'db1:3306' }))]), /^nodes\[0\]\.storage\.host: "db1:3306" contains a port; put only the address in "host" and the port in "port"/);
  hasProblem(cfg([node(1, mysql({ host: 'bad host' }))]), /^nodes\[0\]\.storage\.host: "bad host" is neither an IP address nor a valid host name/);
  // A wrongly typed field is reported once, by type, and not also as missing.
  const typed = problems(cfg([node(1, mysql({ host: 5 }))]));
  assert.deepEqual(typed, ['nodes[0].storage.host: expected a host name or IP address (string), got 5']);
});

test('unknown fields in a mysql storage: the other engine\'s fields get a pointed hint, typos a suggestion', () => {
  hasProblem(cfg([node(1, mysql({ path: 'x.db' }))]), /^nodes\[0\]\.storage: unknown field 'path'; a "mysql" storage has no "path"; give host, port, user, passwordEnv/);
  hasProblem(
    { cluster: 'c', nodes: [{ id: 1, host: '127.0.0.1', port: 7001, storage: { engine: 'sqlite', path: 'a.db', host: 'db1' } }] },
    /^nodes\[0\]\.storage: unknown field 'host'; a "sqlite" storage takes only "path"; for a MySQL\/MariaDB server write "engine": "mysql"/,
  );
  hasProblem(cfg([node(1, mysql({ passwordenv: 'X' }))]), /unknown field 'passwordenv'; did you mean 'passwordEnv'\?/);
  hasProblem(cfg([node(1, mysql({ username: 'x' }))]), /unknown field 'username'; did you mean 'user'\?/);
  hasProblem(cfg([node(1, mysql({ databse: 'x' }))]), /unknown field 'databse'; did you mean 'database'\?/);
});

test('url form parses into the same resolved shape (percent-decoding, default port, IPv6)', () => {
  const u = (url: string, extra: Record<string, unknown> = {}) => cfg([node(1, { engine: 'mysql', url, ...extra })]);
  assert.deepEqual(storageOf(u('mysql://replisql:p%40ss%2Fw@db1:3307/replisql')), {
    engine: 'mysql',
    host: 'db1',
    port: 3307,
    user: 'replisql',
    password: 'p@ss/w',
    database: 'replisql',
    socketPath: null,
  });
  assert.equal(storageOf(u('mysql://u:p@db1/d')).port, 3306);
  assert.equal(storageOf(u('mysql://u:p@[::1]:3306/d')).host, '::1');
  assert.equal(storageOf(u('mysql://u:p@10.0.0.9/d')).host, '10.0.0.9');
  // No password in the URL: passwordEnv gives it.
  assert.equal(storageOf(u('mysql://replisql@db1/replisql', { passwordEnv: 'REPLISQL_DB_PASSWORD' })).password, SECRET);
});

test('url form: every malformed URL is refused with the expected form, and without its password', () => {
  const u = (url: string, extra: Record<string, unknown> = {}) => cfg([node(1, { engine: 'mysql', url, ...extra })]);
  const check = (raw: unknown, re: RegExp) => {
    const list = hasProblem(raw, re);
    for (const p of list) assert.ok(!p.includes('hunter2'), `password leaked: ${p}`);
  };
  check(u('postgres://u:hunter2@db1/d'), /^nodes\[0\]\.storage\.url: expected a URL starting with mysql:\/\/ \(also for MariaDB\), got "postgres:"/);
  check(u('mysql://u:hunter2@db1'), /^nodes\[0\]\.storage\.url: "mysql:\/\/u:<redacted>@db1" names no database; expected mysql:\/\/user:password@host:3306\/database/);
  check(u('mysql://u:hunter2@db1/a/b'), /^nodes\[0\]\.storage\.url: the database "a\/b" .* is not 1-64 characters/);
  check(u('mysql://db1/d'), /^nodes\[0\]\.storage\.url: "mysql:\/\/db1\/d" has no user/);
  check(u('mysql://u:hunter2@db1:99999/d'), /^nodes\[0\]\.storage\.url: "mysql:\/\/u:<redacted>@db1:99999\/d" is not a valid URL; expected mysql:\/\/user:password@host:3306\/database \(percent-encode/);
  check(u('mysql://u:hunter2@db1/d?ssl=true'), /^nodes\[0\]\.storage\.url: options after "\?" are not supported/);
  check(u('mysql://u:hunt#er2@db1/d'), /^nodes\[0\]\.storage\.url: .*(not a valid URL|fragment)/);
  check(u('mysql://u:hunter2%zz@db1/d'), /^nodes\[0\]\.storage\.url: .* has an invalid percent-encoding/);
  check(u('mysql://u:hunter2@0.0.0.0/d'), /^nodes\[0\]\.storage\.url: host "0\.0\.0\.0" means "listen on every interface"/);
  check(u('not a url hunter2@x'), /^nodes\[0\]\.storage\.url: "<redacted>" is not a valid URL/);
  check(u(''), /^nodes\[0\]\.storage\.url: expected a non-empty URL/);
  // url excludes the separate fields, and a password in the URL excludes passwordEnv.
  check(u('mysql://u:hunter2@db1/d', { host: 'db2', database: 'x' }), /^nodes\[0\]\.storage: "host", "database" given together with "url"; give the connection either as "url" or as separate fields, not both$/);
  check(u('mysql://u@db1/d', { password: 'hunter2' }), /^nodes\[0\]\.storage: "password" given together with "url".*leave it out and use "passwordEnv"/);
  check(u('mysql://u:hunter2@db1/d', { passwordEnv: 'REPLISQL_DB_PASSWORD' }), /^nodes\[0\]\.storage: both a password in "url" and "passwordEnv" are given; keep exactly one/);
  check(u('mysql://u@db1/d'), /^nodes\[0\]\.storage: missing the password; .*, or put it in the URL$/);
  const parsed = parseMysqlUrl('mysql://a:b@h:1/d');
  assert.deepEqual(parsed, { host: 'h', port: 1, user: 'a', password: 'b', database: 'd' });
});

test('two nodes pointing at the same MySQL host:port/database are refused', () => {
  const shared = mysql({ host: 'db.example.com' });
  hasProblem(
    cfg([node(1, shared), node(2, shared)]),
    /^nodes\[1\]\.storage: same MySQL database as nodes\[0\] \(db\.example\.com:3306\/replisql\); each node needs its own database/,
  );
  // Same server, different databases: fine (e.g. a test cluster on one server).
  assert.deepEqual(problems(cfg([node(1, shared), node(2, mysql({ host: 'db.example.com', database: 'replisql2' }))])), []);
  // Same server, different port: another server.
  assert.deepEqual(problems(cfg([node(1, shared), node(2, mysql({ host: 'db.example.com', port: 3307 }))])), []);
  // Spelled differently: host case, trailing dot, database case, URL instead of fields.
  hasProblem(cfg([node(1, shared), node(2, mysql({ host: 'DB.example.com.', database: 'REPLISQL' }))]), /^nodes\[1\]\.storage: same MySQL database as nodes\[0\]/);
  hasProblem(
    cfg([node(1, shared), node(2, { engine: 'mysql', url: 'mysql://replisql@db.example.com:3306/replisql', passwordEnv: 'REPLISQL_DB_PASSWORD' })]),
    /^nodes\[1\]\.storage: same MySQL database as nodes\[0\]/,
  );
});

test('a loopback database host means the node\'s own machine', () => {
  const local = mysql({ host: '127.0.0.1' });
  // Three machines, each with its own local MySQL: the usual bare-metal layout, accepted.
  assert.deepEqual(problems(cfg([node(1, local), node(2, local), node(3, mysql({ host: 'localhost' }))])), []);
  // All nodes on one machine: 127.0.0.1:3306/replisql is one database.
  const oneMachine = (storage: Record<string, unknown>[]) =>
    cfg(storage.map((s, i) => node(i + 1, s, '127.0.0.1', 7001 + i)));
  hasProblem(oneMachine([local, mysql({ host: 'localhost' })]), /^nodes\[1\]\.storage: same MySQL database as nodes\[0\] \(localhost:3306\/replisql, on the machine of 127\.0\.0\.1\)/);
  assert.deepEqual(problems(oneMachine([local, mysql({ host: '127.0.0.1', database: 'replisql2' })])), []);
  // Node 1 reaches its database as localhost, node 2 reaches the same server by node 1's address.
  hasProblem(cfg([node(1, local), node(2, mysql({ host: '10.0.0.1' }))]), /^nodes\[1\]\.storage: same MySQL database as nodes\[0\]/);
});

test('a database address that is a node\'s address is refused', () => {
  hasProblem(cfg([node(1, mysql({ host: '10.0.0.2', port: 7001 })), node(2)]), /^nodes\[0\]\.storage: the database address 10\.0\.0\.2:7001 is also the address of nodes\[1\] \(a replisql node, not a MySQL server\)/);
  hasProblem(
    cfg([node(1, mysql({ host: '127.0.0.1', port: 7002 }), '127.0.0.1', 7001), node(2, mysql({ host: '127.0.0.1', database: 'r2' }), '127.0.0.1', 7002)]),
    /^nodes\[0\]\.storage: the database address 127\.0\.0\.1:7002 is also the address of nodes\[1\]/,
  );
});

test('the loopback/real-address mixing rule looks at node hosts only, not database hosts', () => {
  // Real node addresses with local databases.
  assert.deepEqual(problems(cfg([node(1, mysql({ host: '127.0.0.1' })), node(2, mysql({ host: 'localhost' })), node(3, mysql({ host: '::1' }))])), []);
  // Loopback nodes (one machine) with databases on other machines.
  assert.deepEqual(
    problems(cfg([node(1, mysql({ host: 'db1.example.com' }), '127.0.0.1', 7001), node(2, mysql({ host: '10.1.1.2' }), '127.0.0.1', 7002)])),
    [],
  );
  // Node hosts that mix still fail, and the message says database hosts are exempt.
  hasProblem(cfg([node(1), node(2, mysql({ host: 'db2' }), '127.0.0.1')]), /^nodes: mixes loopback addresses .*database hosts are not part of this rule/);
});

test('all nodes must use the same storage engine', () => {
  hasProblem(
    cfg([node(1), node(2), { id: 3, host: '10.0.0.3', port: 7001, storage: { engine: 'sqlite', path: 'data/node3.db' } }]),
    /^nodes: mixes storage engines \("mysql" in nodes\[0\], nodes\[1\]; "sqlite" in nodes\[2\]\); every node must use the same engine/,
  );
});

test('redactConfig hides every password (resolved config, raw input, URLs) and leaves the original intact', () => {
  const c = parse(three());
  const red = redactConfig(c);
  assert.equal((red.nodes[0]!.storage as ResolvedMysqlStorage).password, REDACTED);
  assert.equal((c.nodes[0]!.storage as ResolvedMysqlStorage).password, SECRET, 'original unchanged');
  assert.ok(!JSON.stringify(red).includes(SECRET));
  assert.deepEqual({ ...red, nodes: [] }, { ...c, nodes: [] }, 'everything else kept');
  assert.equal(red.nodes[2]!.dataDir, c.nodes[2]!.dataDir);

  const raw = cfg([node(1, mysql({ password: 'hunter2', passwordEnv: undefined })), node(2, { engine: 'mysql', url: 'mysql://u:hunter2@db2/d' })]);
  const redRaw = JSON.stringify(redactConfig(raw));
  assert.ok(!redRaw.includes('hunter2'), redRaw);
  assert.ok(redRaw.includes('mysql://u:<redacted>@db2/d'), redRaw);
  assert.ok(redRaw.includes('"passwordEnv"') === false || redRaw.includes('REPLISQL_DB_PASSWORD'), 'variable names are not secrets');

  assert.equal(redactUrl('mysql://u:p@ss@h/d'), 'mysql://u:<redacted>@h/d');
  assert.equal(redactUrl('mysql://u@h/d'), 'mysql://u@h/d');
  assert.equal(redactUrl('mysql://h/d'), 'mysql://h/d');
  assert.equal(redactUrl('u:p@h'), REDACTED);
  assert.equal(describeStorage(c.nodes[0]!.storage), 'mysql replisql@db1:3306/replisql');
  assert.equal(describeStorage({ engine: 'mysql', host: '::1', port: 3306, user: 'u', password: 'x', database: 'd', socketPath: null }), 'mysql u@[::1]:3306/d');
  assert.equal(describeStorage({ engine: 'sqlite', path: '/a/b.db' }), 'sqlite /a/b.db');
});

test('no error message ever contains a password, whatever is wrong with it', () => {
  const leaks = (raw: unknown, env: ConfigEnv = ENV) => {
    const list = problems(raw, env);
    assert.ok(list.length > 0, 'expected problems');
    for (const p of list) {
      for (const secret of ['hunter2', SECRET, '123456789']) assert.ok(!p.includes(secret), `leaked in: ${p}`);
    }
    return list;
  };
  const { passwordEnv: _e, ...noEnv } = mysql();
  void _e;
  assert.match(leaks(cfg([node(1, { ...noEnv, password: 123456789 })])).join('\n'), /password: expected the password \(string\).*got a value of type number \(not shown\)/);
  assert.match(leaks(cfg([node(1, { ...noEnv, password: `hunter2${'x'.repeat(2000)}` })])).join('\n'), /password: expected a password of at most 1024 characters, got a string of 2007 characters \(not shown\)/);
  leaks(cfg([node(1, { ...noEnv, password: 'hunter2', database: 'bad-name' })]));
  leaks(cfg([node(1, { engine: 'mysql', url: `mysql://u:hunter2@h/d${'x'.repeat(3000)}` })]));
  leaks(cfg([node(1, { engine: 'mysql', url: 5 })]));
  leaks(three(), { REPLISQL_DB_PASSWORD: `${SECRET}${'y'.repeat(2000)}` });
  // Credentials pasted where they do not belong: a URL as the whole storage, as a host.
  assert.match(leaks(cfg([node(1, 'mysql://u:hunter2@db1/d' as unknown as Record<string, unknown>)])).join('\n'), /mysql:\/\/u:<redacted>@db1\/d/);
  assert.match(leaks(cfg([node(1, mysql({ host: 'u:hunter2@db1' }))])).join('\n'), /^nodes\[0\]\.storage\.host: "u:<redacted>@db1" contains a port|"<redacted>" is neither/m);
  leaks(cfg([node(1, mysql({ host: 'hunter2@db1' }))]));
});

test('loadConfig reads passwordEnv from the environment it is given (process.env by default)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'replisql-mysql-config-'));
  const path = join(dir, 'config.json');
  writeFileSync(path, JSON.stringify(cfg([node(1, mysql({ passwordEnv: 'REPLISQL_TEST_PW_7731' }))])));
  assert.throws(() => loadConfig(path, { env: {} }), /config\.json: nodes\[0\]\.storage\.passwordEnv: environment variable REPLISQL_TEST_PW_7731 is not set/);
  assert.equal((loadConfig(path, { env: { REPLISQL_TEST_PW_7731: 'pw' } }).nodes[0]!.storage as ResolvedMysqlStorage).password, 'pw');
  process.env['REPLISQL_TEST_PW_7731'] = 'from-process';
  try {
    assert.equal((loadConfig(path).nodes[0]!.storage as ResolvedMysqlStorage).password, 'from-process');
  } finally {
    delete process.env['REPLISQL_TEST_PW_7731'];
  }
  assert.equal(loadConfig(path, { env: { REPLISQL_TEST_PW_7731: 'pw' } }).nodes[0]!.dataDir, join(dir, 'data', 'node1'));
});

test('the shipped example configs are valid', () => {
  const root = new URL('../../', import.meta.url);
  const env: ConfigEnv = { REPLISQL_DB_PASSWORD: 'example', REPLISQL_APP_PASSWORD: 'app-example' };
  for (const rel of ['deploy/docker/config.json', 'deploy/examples/config.mysql.json', 'deploy/examples/config.sqlite.json']) {
    const path = new URL(rel, root).pathname;
    const c = loadConfig(path, { env });
    assert.ok(c.nodes.length >= 3, rel);
    assert.ok(!readFileSync(path, 'utf8').includes('"password"'), `${rel} must not hold a password`);
  }
  // The docker config uses the compose service names, not loopback, and one database server per node.
  const docker = loadConfig(new URL('deploy/docker/config.json', root).pathname, { env });
  assert.deepEqual(docker.nodes.map((n) => n.host), ['node1', 'node2', 'node3']);
  assert.deepEqual(docker.nodes.map((n) => (n.storage as ResolvedMysqlStorage).host), ['mysql1', 'mysql2', 'mysql3']);
  // Every node serves MySQL clients; the application user's password comes from the environment.
  assert.deepEqual(docker.nodes.map((n) => n.mysqlPort), [3306, 3306, 3306]);
  assert.deepEqual(docker.mysqlUsers, [{ user: 'app', password: 'app-example' }]);
});
