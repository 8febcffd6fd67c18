// MysqlServer against the Debian `mariadb` command-line client (libmariadb) and, when installed,
// sysbench's prepared-statement path. Skipped with a message when a binary is missing.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startTestServer, type TestServer } from './test-server.js';

function which(bin: string): string | null {
  const r = spawnSync('sh', ['-c', `command -v ${bin}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
}

const MARIADB = which('mariadb') ?? which('mysql');
const SCRIPT = which('script');
const SYSBENCH = which('sysbench');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: string[], input = '', timeoutMs = 10_000): Promise<Run> {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    p.stdin.end(input);
  });
}

describe('the mariadb command-line client', { skip: MARIADB === null ? 'mariadb/mysql client not installed' : false }, () => {
  let ts: TestServer;
  let base: string[];
  before(async () => {
    ts = await startTestServer();
    base = ['-h127.0.0.1', `-P${ts.port}`, '-uroot', '--skip-ssl'];
  });
  after(async () => ts?.close());

  test('-e runs statements and prints results; an error exits non-zero with errno and SQLSTATE', async () => {
    const ok = await run(MARIADB!, [...base, 'test', '-e', "CREATE TABLE c (id INTEGER PRIMARY KEY, v TEXT, d DATE); INSERT INTO c (v, d) VALUES ('héllo', '2024-01-02'), (NULL, NULL); SELECT * FROM c ORDER BY id"]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.stdout, 'id\tv\td\n1\théllo\t2024-01-02\n2\tNULL\tNULL\n');
    const bad = await run(MARIADB!, [...base, 'test', '-e', 'SELECT * FROM missing']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /ERROR 1146 \(42S02\).*no such table: missing/);
  });

  test('a session driven through stdin (batch mode), with USE', async () => {
    const r = await run(MARIADB!, [...base, 'test'], "SELECT 1 AS one;\nUSE test;\nSELECT x'4142' AS b, 2.5 AS f;\n");
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'one\n1\nb\tf\nAB\t2.5\n');
  });

  test('a wrong password is refused with 1045', async () => {
    const r = await run(MARIADB!, ['-h127.0.0.1', `-P${ts.port}`, '-uapp', '-pwrong', '--skip-ssl', '-e', 'SELECT 1']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /ERROR 1045 \(28000\): Access denied for user 'app'@'127\.0\.0\.1' \(using password: YES\)/);
    const good = await run(MARIADB!, ['-h127.0.0.1', `-P${ts.port}`, '-uapp', '-psécret-pw', '--skip-ssl', '-N', '-e', 'SELECT 7']);
    assert.equal(good.stdout, '7\n', good.stderr);
  });

  test('an interactive session on a terminal (through script(1))', { skip: SCRIPT === null ? 'script(1) not installed' : false }, async () => {
    const cmd = [MARIADB!, ...base, 'test'].join(' ');
    const r = await run(SCRIPT!, ['-qec', cmd, '/dev/null'], 'SELECT 40 + 2 AS answer;\nquit\n');
    assert.match(r.stdout, /Server version: 8\.0\.35-replisql/);
    assert.match(r.stdout, /\|\s+answer\s+\|/);
    assert.match(r.stdout, /\|\s+42\s+\|/);
    assert.match(r.stdout, /Bye/);
  });
});

for (const withDescribe of [false, true]) describe(`sysbench prepared statements (libmariadb), columns from ${withDescribe ? 'session.describe()' : 'a LIMIT 0 probe'}`, { skip: SYSBENCH === null ? 'sysbench not installed' : false }, () => {
  let ts: TestServer;
  let dir: string;
  before(async () => {
    ts = await startTestServer({}, withDescribe);
    ts.db.exec(
      "CREATE TABLE sbtest1 (id INTEGER PRIMARY KEY, k INTEGER NOT NULL DEFAULT 0, c CHAR(120) NOT NULL DEFAULT '', pad CHAR(60) NOT NULL DEFAULT '');" +
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100) INSERT INTO sbtest1 SELECT i, i, 'c-' || i, 'pad' FROM n;",
    );
    dir = mkdtempSync(join(tmpdir(), 'replisql-sysbench-'));
  });
  after(async () => {
    await ts?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const args = (): string[] => [
    '--db-driver=mysql', '--mysql-host=127.0.0.1', `--mysql-port=${ts.port}`, '--mysql-user=root', '--mysql-password=', '--mysql-db=test', '--mysql-ssl=off',
  ];

  test('a prepared SELECT returns its row and counts as a read', async () => {
    const script = join(dir, 'ps.lua');
    writeFileSync(
      script,
      `done = false
function event()
  if done then return end
  done = true
  local con = sysbench.sql.driver():connect()
  local stmt = con:prepare("SELECT c FROM sbtest1 WHERE id = ?")
  local p = stmt:bind_create(sysbench.sql.type.INT)
  stmt:bind_param(p)
  p:set(5)
  local rs = stmt:execute()
  io.stderr:write("nrows=", rs.nrows, "\\n")
  local rs2 = con:query("SELECT c FROM sbtest1 WHERE id = 7")
  io.stderr:write("row=", rs2:fetch_row()[1], "\\n")
  stmt:close()
  con:disconnect()
end
`,
    );
    const r = await run(SYSBENCH!, [script, ...args(), '--events=1', '--threads=1', 'run']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stderr, /nrows=1\n/);
    assert.match(r.stderr, /row=c-7\n/);
  });

  test('oltp_point_select for one second: reads only, no errors', async () => {
    const r = await run(SYSBENCH!, ['oltp_point_select', ...args(), '--tables=1', '--table-size=100', '--time=1', '--threads=2', 'run'], '', 15_000);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const reads = Number(/read:\s+(\d+)/.exec(r.stdout)?.[1]);
    assert.ok(reads > 100, r.stdout);
    assert.match(r.stdout, /write:\s+0\n/);
    assert.match(r.stdout, /ignored errors:\s+0 /);
  });
});
