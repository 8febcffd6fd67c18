// The client and status commands, run as real processes against the fake node.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { startFakeServer, closedPort, defaultHandler, SAMPLE_STATUS } from './fake-server.js';
import { statementComplete, isBlankSql, formatResultText, formatResultJson } from '../../src/cli/client-shell.js';
import { formatStatus } from '../../src/cli/status.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the CLI asynchronously (the fake server lives in this process's event loop). */
function cli(args: readonly string[], stdin = ''): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
      cwd: root,
      env: { ...process.env, REPLISQL_HISTORY_FILE: '' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(stdin);
  });
}

test('client -e --json prints exactly one JSON line per statement and exits 0', async () => {
  const srv = await startFakeServer();
  try {
    const r = await cli(['client', '--connect', srv.endpoint, '-e', 'INSERT INTO t VALUES (1); SELECT * FROM t;', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trimEnd().split('\n');
    assert.deepEqual(lines, [
      '{"columns":[],"rows":[],"affectedRows":1,"lastInsertId":1}',
      '{"columns":["id","name"],"rows":[[1,"alice"],[2,null]],"affectedRows":0,"lastInsertId":null}',
    ]);
    const q = srv.requests.filter((x) => x.type === 'QUERY');
    assert.equal(q.length, 1, 'the whole string is one request');
    assert.equal(q[0]!.sql, 'INSERT INTO t VALUES (1); SELECT * FROM t;');
  } finally {
    await srv.close();
  }
});

test('client -e --json: a failed request prints an error line and exits non-zero', async () => {
  const srv = await startFakeServer();
  try {
    const r = await cli(['client', '--connect', srv.endpoint, '-e', 'INSERT NO_QUORUM;', '--json']);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, '{"error":{"code":"NO_QUORUM","message":"only 1 of 3 nodes reachable"}}\n');
  } finally {
    await srv.close();
  }
});

test('client -e prints mysql-style tables, row counts and errors', async () => {
  const srv = await startFakeServer();
  try {
    const r = await cli(['client', '--connect', srv.endpoint, '-e', 'INSERT INTO t VALUES (1); SELECT * FROM t']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^Query OK, 1 row affected\n/);
    assert.match(r.stdout, /\+----\+-------\+\n\| id \| name  \|\n\+----\+-------\+\n\|  1 \| alice \|\n\|  2 \| NULL  \|\n\+----\+-------\+\n/);
    assert.match(r.stdout, /2 rows in set \(\d+\.\d{3} sec\)\n$/);
    const e = await cli(['client', '--connect', srv.endpoint, '-e', 'SYNTAX']);
    assert.equal(e.code, 1);
    assert.equal(e.stdout, 'ERROR SQLITE_ERROR: near "SYNTAX": syntax error\n');
  } finally {
    await srv.close();
  }
});

test('client fails over from a refused endpoint to the next', async () => {
  const dead = await closedPort();
  const srv = await startFakeServer();
  try {
    const r = await cli(['client', '--connect', `127.0.0.1:${dead},${srv.endpoint}`, '-e', 'SELECT 1', '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim().split('\n').length, 1);
  } finally {
    await srv.close();
  }
});

test('client: no reachable endpoint exits 1 with UNAVAILABLE', async () => {
  const dead = await closedPort();
  const r = await cli(['client', '--connect', `127.0.0.1:${dead}`, '-e', 'SELECT 1', '--json']);
  assert.equal(r.code, 1);
  const out = JSON.parse(r.stdout) as { error: { code: string; message: string } };
  assert.equal(out.error.code, 'UNAVAILABLE');
  assert.match(out.error.message, /ECONNREFUSED/);
});

test('client reads statements from piped stdin, across lines, until ";" outside strings', async () => {
  const srv = await startFakeServer();
  try {
    const input = "SELECT 1;\nINSERT INTO t\n  VALUES ('a;b');\nSELECT 2\n";
    const r = await cli(['client', '--connect', srv.endpoint, '--json'], input);
    assert.equal(r.code, 0, r.stderr);
    const sqls = srv.requests.filter((x) => x.type === 'QUERY').map((x) => x.sql);
    assert.deepEqual(sqls, ['SELECT 1;', "INSERT INTO t\n  VALUES ('a;b');", 'SELECT 2'], 'the last statement runs at end of input');
    for (const line of r.stdout.trim().split('\n')) assert.ok('columns' in JSON.parse(line), line);
  } finally {
    await srv.close();
  }
});

test('status --json prints the status object; status prints a table', async () => {
  const srv = await startFakeServer();
  try {
    const j = await cli(['status', '--connect', srv.endpoint, '--json']);
    assert.equal(j.code, 0, j.stderr);
    assert.deepEqual(JSON.parse(j.stdout), SAMPLE_STATUS);
    const t = await cli(['status', '--connect', srv.endpoint]);
    assert.equal(t.code, 0, t.stderr);
    assert.match(t.stdout, /Node 1 \(127\.0\.0\.1:\d+\): follower, coordinator 3, term 7, commit index 42, applied index 41, healthy/);
    assert.match(t.stdout, /2 of 3 nodes online/);
  } finally {
    await srv.close();
  }
});

test('invalid flags exit 2 with a clear message', async () => {
  const cases: [string[], RegExp][] = [
    [['client', '--connect', 'nohost'], /"nohost" has no port/],
    [['client'], /required option '--connect/],
    [['client', '--connect', '127.0.0.1:1', '--timeout', 'soon'], /--timeout <ms>.*expected an integer/],
    [['status', '--connect', '127.0.0.1:99999'], /port must be an integer between 1 and 65535/],
    [['sim', '--nodes', '9'], /expected an integer between 0 and 7/],
    [['demo', '--base-port', '65535', '--nodes', '3'], /leaves no room for 3 ports/],
    [['node', '--config', 'x.json'], /required option '--id/],
    [['frobnicate'], /unknown command 'frobnicate'/],
    [['client', '--connect', '127.0.0.1:1', '--bogus'], /unknown option '--bogus'/],
    [[], /Usage: replisql/],
  ];
  for (const [args, re] of cases) {
    const r = await cli(args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, re, args.join(' '));
  }
});

test('node --config with an invalid file exits 1 listing the problems', async () => {
  const r = await cli(['node', '--config', 'test/config/does-not-exist.json', '--id', '1']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /does-not-exist\.json: cannot read the config file/);
});

// ---------------------------------------------------------------- pieces of the shell

test('statementComplete: ";" outside quotes and comments ends input', () => {
  assert.equal(statementComplete('SELECT 1;'), true);
  assert.equal(statementComplete('SELECT 1;  \n'), true);
  assert.equal(statementComplete('SELECT 1'), false);
  assert.equal(statementComplete("SELECT 'a;"), false);
  assert.equal(statementComplete("SELECT 'a;';"), true);
  assert.equal(statementComplete("SELECT 'it''s';"), true);
  assert.equal(statementComplete("SELECT 'it\\'s;'"), false);
  assert.equal(statementComplete('SELECT "x;" ;'), true);
  assert.equal(statementComplete('SELECT `a;b`'), false);
  assert.equal(statementComplete('SELECT 1 -- ;'), false);
  assert.equal(statementComplete('SELECT 1; -- done'), true);
  assert.equal(statementComplete('SELECT 1 /* ; */'), false);
  assert.equal(statementComplete('SELECT 1; /* x */'), true);
  assert.equal(statementComplete('SELECT 1 # ;'), false);
  // A compound body's inner ';' does not end the input.
  assert.equal(statementComplete('CREATE TRIGGER tr AFTER INSERT ON t BEGIN INSERT INTO u VALUES (1);'), false);
  assert.equal(statementComplete('CREATE TRIGGER tr AFTER INSERT ON t BEGIN INSERT INTO u VALUES (1); END;'), true);
  assert.equal(statementComplete('BEGIN;'), true);
  assert.equal(isBlankSql(' ; -- x\n /* y */ '), true);
  assert.equal(isBlankSql('SELECT 1'), false);
});

test('formatResultText and formatResultJson', () => {
  const r = { columns: ['n', 's'], rows: [[10, 'x'], [null, 'yy']], affectedRows: 0, lastInsertId: null };
  assert.equal(
    formatResultText(r, 3),
    '+------+----+\n|    n | s  |\n+------+----+\n|   10 | x  |\n| NULL | yy |\n+------+----+\n2 rows in set (0.003 sec)\n',
  );
  assert.equal(formatResultText({ ...r, rows: [] }, null), 'Empty set\n');
  assert.equal(formatResultText({ columns: [], rows: [], affectedRows: 1, lastInsertId: 5 }, 1), 'Query OK, 1 row affected (0.001 sec)\n');
  assert.equal(formatResultJson(r), '{"columns":["n","s"],"rows":[[10,"x"],[null,"yy"]],"affectedRows":0,"lastInsertId":null}');
});

test('formatStatus marks the coordinator and this node', () => {
  const text = formatStatus(SAMPLE_STATUS as Parameters<typeof formatStatus>[0], '127.0.0.1:7001');
  assert.match(text, /\|  3 \| yes +\| +420 ms ago \| +- \| coordinator +\|/);
  assert.match(text, /\|  1 \| yes +\| +- \| +- \| \(this node\) +\|/);
  assert.match(text, /\|  2 \| NO +\| +15\.3 s ago \|/);
});

test('client --consistency/--max-staleness/--ack put the read level and write ack on every request', async () => {
  const seen: unknown[] = [];
  const srv = await startFakeServer((req, ctx) => {
    if (req.type === 'QUERY') {
      const r = req as unknown as Record<string, unknown>;
      seen.push({ consistency: r['consistency'], maxStalenessMs: r['maxStalenessMs'], ack: r['ack'] });
      return { type: 'RESULT', id: req.id, results: [{ columns: ['x'], rows: [[1]], affectedRows: 0, lastInsertId: null }] };
    }
    return defaultHandler(req, ctx);
  });
  try {
    const r = await cli(['client', '--connect', srv.endpoint, '--consistency', 'bounded', '--max-staleness', '250', '--ack', 'all-applied', '-e', 'SELECT 1', '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(seen, [{ consistency: 'bounded', maxStalenessMs: 250, ack: 'all-applied' }]);
    const plain = await cli(['client', '--connect', srv.endpoint, '-e', 'SELECT 1', '--json']);
    assert.equal(plain.code, 0, plain.stderr);
    assert.deepEqual(seen[1], { consistency: undefined, maxStalenessMs: undefined, ack: undefined }, 'no flags: the node decides');
    const bad = await cli(['client', '--connect', srv.endpoint, '--consistency', 'strong', '-e', 'SELECT 1']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /argument 'strong' is invalid\. Allowed choices are local, session, bounded, linearizable/);
  } finally {
    await srv.close();
  }
});
