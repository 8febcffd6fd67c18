// Real MySQL clients against the MySQL protocol front end of a 3-node cluster (real processes), on
// MariaDB (one instance per node) and on SQLite (SQLite's SQL through the MySQL protocol):
//   - the Debian `mariadb` command-line client: `-e` with several statements and a transaction, a
//     session driven line by line through stdin (BEGIN ... ROLLBACK, BEGIN ... COMMIT), ERROR 1045
//     for a wrong password and 1049 for an unknown database;
//   - mysql2 `query` and `execute` on a follower: on MariaDB the values are compared with what mysql2
//     returns from the node's MariaDB instance directly for the same rows; insertId/affectedRows;
//     beginTransaction/commit/rollback; duplicate key (1062 23000); unsafe statements (1235);
//   - read-your-writes on a follower, many times in a row;
//   - cluster errors over MySQL: no quorum (1047, reads still work), the coordinator killed while a
//     transaction is open (1213, nothing of it anywhere).
// Every test ends with the replicas compared: CHECKSUM TABLE on each MariaDB instance, or the rows
// read through each node on SQLite.
import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { inspect, isDeepStrictEqual } from 'node:util';
import mysql, { type Connection, type ConnectionOptions, type FieldPacket, type ResultSetHeader, type RowDataPacket } from 'mysql2/promise';
import { ENGINES, MYSQL_DATABASE, runProcess, useCluster, waitUntil, type Cluster, type ProcessRun } from './harness.js';

function which(bin: string): string | null {
  const r = spawnSync('sh', ['-c', `command -v ${bin}`], { encoding: 'utf8' });
  return r.status === 0 && r.stdout.trim() !== '' ? r.stdout.trim() : null;
}

const MARIADB_CLIENT = which('mariadb') ?? which('mysql');
const REQUIRE_MYSQL = process.env['REPLISQL_REQUIRE_MYSQL'] === '1';

/** The database name MySQL clients use: the storage's on MariaDB, `main` on SQLite. */
function databaseOf(cluster: Cluster): string {
  return cluster.engine === 'mysql' ? MYSQL_DATABASE : 'main';
}

/** Skips a test (with the reason shown) when the mariadb client is missing; fails instead in CI. */
function needClient(t: TestContext): string | null {
  if (MARIADB_CLIENT !== null) return MARIADB_CLIENT;
  if (REQUIRE_MYSQL) throw new Error('the mariadb (or mysql) command-line client is not installed (REPLISQL_REQUIRE_MYSQL=1)');
  t.skip('the mariadb command-line client is not installed');
  return null;
}

function run(cmd: string, args: readonly string[], input = '', timeoutMs = 30_000): Promise<ProcessRun> {
  return runProcess(cmd, args, { input, timeoutMs });
}

/** `mariadb` arguments for node `id`'s MySQL front end. */
function cliArgs(cluster: Cluster, id: number, user = 'app', password: string | null = 'secret', database: string | null = databaseOf(cluster)): string[] {
  const { host, port } = cluster.mysqlAddress(id);
  return [`-h${host}`, `-P${port}`, `-u${user}`, ...(password === null ? [] : [`-p${password}`]), '--skip-ssl', ...(database === null ? [] : [database])];
}

/**
 * A `mariadb` process reading statements from a pipe (batch mode, --unbuffered so each result is
 * written as soon as it is known): send() writes lines and waits until the output holds a marker
 * row, then returns what was printed since the previous marker.
 */
class CliSession {
  private readonly child: ChildProcessWithoutNullStreams;
  private out = '';
  private err = '';
  private seen = 0;
  private marks = 0;
  private exit: Promise<number | null>;

  constructor(bin: string, args: readonly string[]) {
    this.child = spawn(bin, [...args, '--unbuffered'], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stdout.setEncoding('utf8');
    this.child.stderr.setEncoding('utf8');
    this.child.stdout.on('data', (d: string) => (this.out += d));
    this.child.stderr.on('data', (d: string) => (this.err += d));
    this.child.stdin.on('error', () => undefined);
    this.exit = new Promise((resolve) => this.child.once('close', (code) => resolve(code)));
  }

  /** Writes `sql` (statements ending with `;`), then a marker SELECT; resolves with the output before the marker. */
  async send(sql: string, timeoutMs = 20_000): Promise<string> {
    const mark = `mark-${++this.marks}`;
    this.child.stdin.write(`${sql}\nSELECT '${mark}' AS mark;\n`);
    const tail = `mark\n${mark}\n`;
    await waitUntil(`the mariadb client to print ${mark} (stdout so far: ${JSON.stringify(this.out.slice(this.seen))}, stderr: ${JSON.stringify(this.err)})`, () => this.out.indexOf(tail, this.seen) !== -1 || this.child.exitCode !== null ? true : undefined, { timeoutMs, intervalMs: 10 });
    const at = this.out.indexOf(tail, this.seen);
    if (at === -1) throw new Error(`the mariadb client exited (${String(this.child.exitCode)}) before printing ${mark}; stdout: ${JSON.stringify(this.out.slice(this.seen))}; stderr: ${JSON.stringify(this.err)}`);
    const chunk = this.out.slice(this.seen, at);
    this.seen = at + tail.length;
    return chunk;
  }

  /** Closes stdin (the client then exits); resolves with the exit code and anything printed since the last marker. */
  async end(): Promise<{ code: number | null; rest: string; stderr: string }> {
    this.child.stdin.end();
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    const code = await this.exit;
    clearTimeout(timer);
    return { code, rest: this.out.slice(this.seen), stderr: this.err };
  }

  kill(): void {
    if (this.child.exitCode === null) this.child.kill('SIGKILL');
  }
}

/** A mysql2 connection to node `id`'s front end (app/secret), closed when the test ends. */
async function connectNode(t: TestContext, cluster: Cluster, id: number, opts: ConnectionOptions = {}): Promise<Connection> {
  const { host, port } = cluster.mysqlAddress(id);
  const c = await mysql.createConnection({ host, port, user: 'app', password: 'secret', database: databaseOf(cluster), timezone: 'Z', connectTimeout: 5000, ...opts });
  // A node killed under an idle connection must not become an unhandled 'error' event.
  c.on('error', () => undefined);
  t.after(() => c.destroy());
  return c;
}

/** A mysql2 connection straight to node `id`'s MariaDB instance (root), closed when the test ends. */
async function connectMariaDb(t: TestContext, cluster: Cluster, id: number, database: string, opts: ConnectionOptions = {}): Promise<Connection> {
  const c = await mysql.createConnection({ ...cluster.db(id).connection(database), timezone: 'Z', connectTimeout: 5000, ...opts });
  c.on('error', () => undefined);
  t.after(() => c.destroy());
  return c;
}

interface MysqlErrorInfo {
  readonly errno: number | undefined;
  readonly sqlState: string | undefined;
  readonly code: string | undefined;
  readonly message: string;
}

/** The MySQL error `p` rejects with (fails if it resolves). */
async function mysqlError(p: Promise<unknown>, what: string): Promise<MysqlErrorInfo> {
  try {
    await p;
  } catch (err) {
    const e = err as { errno?: number; sqlState?: string; code?: string; message?: string };
    return { errno: e.errno, sqlState: e.sqlState, code: e.code, message: String(e.message ?? err) };
  }
  assert.fail(`${what}: expected a MySQL error, but it succeeded`);
}

async function rowsOf(c: Connection, sql: string, params?: readonly unknown[]): Promise<RowDataPacket[]> {
  const [rows] = params === undefined ? await c.query<RowDataPacket[]>(sql) : await c.execute<RowDataPacket[]>(sql, params as never);
  return rows;
}

/**
 * Runs a CREATE TABLE through `c` and waits until every node has applied it. A statement prepared on
 * a follower right after its session's own CREATE TABLE does not find the table yet (the subject of
 * the "read-your-writes covers prepared statements" test); the other tests are not about that.
 */
async function createTable(cluster: Cluster, c: Connection, ddl: string): Promise<void> {
  await c.query(ddl);
  await cluster.waitCaughtUp([1, 2, 3], 3);
}

/** On MariaDB: CHECKSUM TABLE identical on every instance; on SQLite: the same rows through every node. */
async function assertReplicasIdentical(cluster: Cluster, tables: readonly string[]): Promise<void> {
  await cluster.waitForCoordinator(3, [1, 2, 3]);
  await cluster.waitCaughtUp([1, 2, 3], 3);
  if (cluster.engine === 'mysql') {
    await cluster.assertSameChecksums([1, 2, 3], tables);
  }
  for (const table of tables) {
    const dumps = await Promise.all([1, 2, 3].map((id) => cluster.dump(id, table, '1')));
    assert.deepEqual(dumps[1], dumps[0], `${table}: node 2 has the rows node 1 has`);
    assert.deepEqual(dumps[2], dumps[0], `${table}: node 3 has the rows node 1 has`);
  }
}

/**
 * Every value of `a` (the front end) and `b` (MariaDB directly) side by side; a list of the
 * differences (empty when mysql2 cannot tell them apart).
 */
function differences(label: string, a: RowDataPacket[], b: RowDataPacket[], fa: FieldPacket[] | undefined, fb: FieldPacket[] | undefined): string[] {
  const out: string[] = [];
  if (fa !== undefined && fb !== undefined) {
    const na = fa.map((f) => f.name);
    const nb = fb.map((f) => f.name);
    if (!isDeepStrictEqual(na, nb)) out.push(`${label}: columns ${JSON.stringify(na)} vs MariaDB ${JSON.stringify(nb)}`);
  }
  if (a.length !== b.length) out.push(`${label}: ${a.length} rows vs MariaDB ${b.length}`);
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const ra = a[i]!;
    const rb = b[i]!;
    for (const k of new Set([...Object.keys(ra), ...Object.keys(rb)])) {
      if (!isDeepStrictEqual(ra[k], rb[k])) out.push(`${label} row ${i + 1} column ${k}: front end ${inspect(ra[k])} (${typeof ra[k]}), MariaDB ${inspect(rb[k])} (${typeof rb[k]})`);
    }
  }
  return out;
}

for (const engine of ENGINES) {
  describe(`${engine}: MySQL clients through the front end of a 3-node cluster`, () => {
    // A failure timeout of 4 s rather than the harness's 1.5 s: a loaded machine that stalls a node for
    // a couple of seconds must not turn into an unplanned failover in the middle of a test.
    const fx = useCluster({ engine, nodes: 3, mysqlFrontEnd: true, heartbeatIntervalMs: 500, failureTimeoutMs: 4000 });

    test('the mariadb client: -e with CREATE TABLE, INSERT, SELECT and a transaction; the rows reach every node', { timeout: 120_000 }, async (t) => {
      const cluster = fx.take(t);
      if (cluster === null) return;
      const bin = needClient(t);
      if (bin === null) return;
      await cluster.check(async () => {
        await cluster.waitForCoordinator(3);
        const before = (await cluster.status(3)).commitIndex;
        const r = await run(bin, [
          ...cliArgs(cluster, 1),
          '-e',
          `CREATE TABLE cli_items (id ${cluster.dialect.autoId}, name VARCHAR(40) NOT NULL, qty INT NOT NULL); ` +
            "INSERT INTO cli_items (name, qty) VALUES ('apple', 3), ('pêra 🍐', 5); " +
            'SELECT id, name, qty FROM cli_items ORDER BY id; ' +
            "BEGIN; UPDATE cli_items SET qty = qty + 10 WHERE name = 'apple'; INSERT INTO cli_items (name, qty) VALUES ('cherry', 7); " +
            'SELECT COUNT(*) AS inside FROM cli_items; COMMIT; ' +
            'SELECT id, name, qty FROM cli_items ORDER BY id; SELECT COUNT(*) AS n, SUM(qty) AS total FROM cli_items',
        ]);
        assert.equal(r.stderr, '');
        assert.equal(r.code, 0);
        assert.equal(
          r.stdout,
          'id\tname\tqty\n1\tapple\t3\n2\tpêra 🍐\t5\n' + 'inside\n3\n' + 'id\tname\tqty\n1\tapple\t13\n2\tpêra 🍐\t5\n3\tcherry\t7\n' + 'n\ttotal\n3\t25\n',
        );
        const after = (await cluster.status(3)).commitIndex;
        assert.equal(after - before, 3, 'CREATE TABLE, the INSERT and the whole transaction are three log entries');

        await cluster.waitCaughtUp([1, 2, 3], 3);
        for (const id of [2, 3]) {
          const other = await run(bin, [...cliArgs(cluster, id), '-N', '-e', 'SELECT id, name, qty FROM cli_items ORDER BY id']);
          assert.equal(other.stderr, '');
          assert.equal(other.stdout, '1\tapple\t13\n2\tpêra 🍐\t5\n3\tcherry\t7\n', `node ${id} has the rows`);
        }
        await assertReplicasIdentical(cluster, ['cli_items']);
      });
    });

    test('the mariadb client driven line by line through stdin: BEGIN ... ROLLBACK leaves nothing, BEGIN ... COMMIT reaches every node', { timeout: 120_000 }, async (t) => {
      const cluster = fx.take(t);
      if (cluster === null) return;
      const bin = needClient(t);
      if (bin === null) return;
      await cluster.check(async () => {
        await cluster.waitForCoordinator(3);
        const observer = await connectNode(t, cluster, 2);
        const s = new CliSession(bin, cliArgs(cluster, 1));
        t.after(() => s.kill());
        assert.equal(await s.send(`CREATE TABLE cli_session (id ${cluster.dialect.autoId}, body VARCHAR(40) NOT NULL);\nINSERT INTO cli_session (body) VALUES ('first');`), '');
        assert.equal(await s.send('SELECT COUNT(*) AS n FROM cli_session;'), 'n\n1\n');
        const index = (await cluster.status(3)).commitIndex;

        assert.equal(await s.send("BEGIN;\nINSERT INTO cli_session (body) VALUES ('ghost');\nSELECT @@in_transaction AS tx;\nSELECT COUNT(*) AS n FROM cli_session;"), 'tx\n1\nn\n2\n', 'inside the transaction its own row is visible');
        // The transaction is open (the client is waiting for the next line): nobody else sees its row.
        await cluster.waitCaughtUp([2], 3);
        assert.deepEqual(await rowsOf(observer, 'SELECT body FROM cli_session ORDER BY id'), [{ body: 'first' }]);
        assert.equal(await s.send('ROLLBACK;\nSELECT @@in_transaction AS tx;\nSELECT COUNT(*) AS n FROM cli_session;'), 'tx\n0\nn\n1\n');
        assert.equal((await cluster.status(3)).commitIndex, index, 'a rolled-back transaction logs nothing');

        assert.equal(
          await s.send("BEGIN;\nINSERT INTO cli_session (body) VALUES ('second');\nUPDATE cli_session SET body = 'first, edited' WHERE body = 'first';\nCOMMIT;\nSELECT body FROM cli_session ORDER BY id;"),
          'body\nfirst, edited\nsecond\n',
        );
        assert.equal((await cluster.status(3)).commitIndex, index + 1, 'the committed transaction is one log entry');
        const end = await s.end();
        assert.equal(end.stderr, '');
        assert.equal(end.code, 0);
        assert.equal(end.rest, '');

        await cluster.waitCaughtUp([1, 2, 3], 3);
        for (const id of [1, 2, 3]) {
          assert.deepEqual((await cluster.dump(id, 'cli_session', 'id')).map((r) => r[1]), ['first, edited', 'second'], `node ${id}: the commit, not the rolled-back row`);
        }
        await assertReplicasIdentical(cluster, ['cli_session']);
      });
    });

    test('the mariadb client: a wrong password is ERROR 1045, an unknown database ERROR 1049', { timeout: 60_000 }, async (t) => {
      const cluster = fx.take(t);
      if (cluster === null) return;
      const bin = needClient(t);
      if (bin === null) return;
      await cluster.check(async () => {
        const denied = await run(bin, [...cliArgs(cluster, 1, 'app', 'wrong'), '-e', 'SELECT 1']);
        assert.equal(denied.code, 1);
        assert.equal(denied.stdout, '');
        assert.match(denied.stderr, /^ERROR 1045 \(28000\): Access denied for user 'app'@'127\.0\.0\.1' \(using password: YES\)$/m);
        const noUser = await run(bin, [...cliArgs(cluster, 2, 'nobody', 'secret'), '-e', 'SELECT 1']);
        assert.equal(noUser.code, 1);
        assert.match(noUser.stderr, /^ERROR 1045 \(28000\): Access denied for user 'nobody'/m);

        const unknownDb = await run(bin, [...cliArgs(cluster, 1, 'app', 'secret', 'no_such_db'), '-e', 'SELECT 1']);
        assert.equal(unknownDb.code, 1);
        assert.equal(unknownDb.stdout, '');
        assert.match(unknownDb.stderr, /^ERROR 1049 \(42000\): Unknown database 'no_such_db'/m);
        const use = await run(bin, [...cliArgs(cluster, 3, 'app', 'secret', null)], `SELECT 'before' AS x;\nUSE no_such_db;\nSELECT 'after' AS x;\n`);
        assert.equal(use.code, 1);
        assert.equal(use.stdout, 'x\nbefore\n');
        assert.match(use.stderr, /^ERROR 1049 \(42000\) at line 2: Unknown database 'no_such_db'/m);

        // The right credentials: root with an empty password, app with its own.
        const root = await run(bin, [...cliArgs(cluster, 1, 'root', null), '-N', '-e', 'SELECT 6 * 7']);
        assert.equal(root.stderr, '');
        assert.equal(root.stdout, '42\n');
        const app = await run(bin, [...cliArgs(cluster, 2, 'app', 'secret', null), '-N', '-e', `USE ${databaseOf(cluster)}; SELECT 'ok'`]);
        assert.equal(app.stderr, '');
        assert.equal(app.stdout, 'ok\n');
      });
    });

    if (engine === 'mysql') {
      test('mysql2 query and execute on a follower return what mysql2 gets from MariaDB directly (ints, big ints, decimals, doubles, UTF-8, NULL, Buffers, DATETIME, DATE)', { timeout: 120_000 }, async (t) => {
        const cluster = fx.take(t);
        if (cluster === null) return;
        await cluster.check(async () => {
          await cluster.waitForCoordinator(3);
          const c = await connectNode(t, cluster, 1);
          await createTable(
            cluster,
            c,
            'CREATE TABLE types_cmp (id INT PRIMARY KEY AUTO_INCREMENT, i INT, ti TINYINT, si SMALLINT, u INT UNSIGNED, big BIGINT, ubig BIGINT UNSIGNED, ' +
              'd DECIMAL(20,6), dneg DECIMAL(10,2), dbl DOUBLE, s VARCHAR(100), t TEXT, ch CHAR(4), b VARBINARY(64), bl BLOB, ' +
              'dt DATETIME, dt6 DATETIME(6), da DATE, n INT NULL)',
          );
          const [q] = await c.query<ResultSetHeader>(
            'INSERT INTO types_cmp (i, ti, si, u, big, ubig, d, dneg, dbl, s, t, ch, b, bl, dt, dt6, da, n) VALUES ' +
              "(-42, -128, -32768, 4294967295, 9007199254740993, 18446744073709551615, 12345678901234.123456, -12.5, 3.141592653589793, 'héllo 😀 ✓', 'long text ñ', 'ab', " +
              "x'00ff10', x'deadbeef', '2024-02-29 13:14:15', '2024-02-29 13:14:15.123456', '2024-02-29', NULL)",
          );
          assert.deepEqual([q.affectedRows, q.insertId], [1, 1]);
          const [e] = await c.execute<ResultSetHeader>('INSERT INTO types_cmp (i, ti, si, u, big, ubig, d, dneg, dbl, s, t, ch, b, bl, dt, dt6, da, n) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)', [
            7, 127, 0, 0, '-9223372036854775808', '0', '0.000001', '0', 1e300, 'ñ 🎉', '', '', Buffer.from([1, 2, 3, 0]), Buffer.alloc(0),
            new Date(Date.UTC(2023, 0, 2, 3, 4, 5)), '1970-01-01 00:00:00.000001', '2023-01-02', null,
          ]);
          assert.deepEqual([e.affectedRows, e.insertId], [1, 2]);
          const [n] = await c.query<ResultSetHeader>('INSERT INTO types_cmp (n) VALUES (NULL)');
          assert.deepEqual([n.affectedRows, n.insertId], [1, 3]);
          await cluster.waitCaughtUp([1, 2, 3], 3);

          const diffs: string[] = [];
          const optionSets: Record<string, ConnectionOptions> = {
            'default options': {},
            supportBigNumbers: { supportBigNumbers: true },
            'supportBigNumbers + dateStrings': { supportBigNumbers: true, dateStrings: true },
          };
          for (const [name, opts] of Object.entries(optionSets)) {
            const fe = await connectNode(t, cluster, 1, opts);
            const direct = await connectMariaDb(t, cluster, 1, MYSQL_DATABASE, opts);
            const [fq, ffq] = await fe.query<RowDataPacket[]>('SELECT * FROM types_cmp ORDER BY id');
            const [dq, dfq] = await direct.query<RowDataPacket[]>('SELECT * FROM types_cmp ORDER BY id');
            diffs.push(...differences(`${name}, query`, fq, dq, ffq, dfq));
            const [fx2, ffx] = await fe.execute<RowDataPacket[]>('SELECT * FROM types_cmp WHERE id >= ? ORDER BY id', [1]);
            const [dx, dfx] = await direct.execute<RowDataPacket[]>('SELECT * FROM types_cmp WHERE id >= ? ORDER BY id', [1]);
            diffs.push(...differences(`${name}, execute`, fx2, dx, ffx, dfx));
            if (name === 'supportBigNumbers + dateStrings') {
              // The values themselves, not only the agreement.
              const r1 = fx2[0]!;
              assert.equal(r1['big'], '9007199254740993');
              assert.equal(r1['ubig'], '18446744073709551615');
              assert.equal(r1['d'], '12345678901234.123456');
              assert.equal(r1['s'], 'héllo 😀 ✓');
              assert.deepEqual(r1['b'], Buffer.from([0x00, 0xff, 0x10]));
              assert.equal(r1['dt6'], '2024-02-29 13:14:15.123456');
              assert.equal(r1['n'], null);
              assert.equal(fx2[1]!['big'], '-9223372036854775808');
              assert.equal(fx2[1]!['dt'], '2023-01-02 03:04:05');
              // Nodes 2 and 3 answer with the same values from their own databases.
              for (const id of [2, 3]) {
                const other = await connectNode(t, cluster, id, opts);
                diffs.push(...differences(`${name}, execute on node ${id} vs MariaDB of node 1`, (await other.execute<RowDataPacket[]>('SELECT * FROM types_cmp WHERE id >= ? ORDER BY id', [1]))[0], dx, undefined, undefined));
              }
            }
          }
          assert.deepEqual(diffs, [], `mysql2 sees differences between the front end and MariaDB:\n${diffs.join('\n')}`);
          await assertReplicasIdentical(cluster, ['types_cmp']);
        });
      });

      // The node reads MariaDB through the text protocol, where the server prints a FLOAT with 6
      // significant digits; values with more digits than that come back rounded the way MariaDB's own
      // text protocol rounds them (docs/mysql-protocol.md), so this compares values within 6 digits
      // and checks that rounding separately.
      test('mysql2 execute (binary protocol) returns a FLOAT column as MariaDB does', { timeout: 60_000 }, async (t) => {
        const cluster = fx.take(t);
        if (cluster === null) return;
        await cluster.check(async () => {
          await cluster.waitForCoordinator(3);
          const c = await connectNode(t, cluster, 1);
          await createTable(cluster, c, 'CREATE TABLE float_cmp (id INT PRIMARY KEY, f FLOAT, fn FLOAT NULL)');
          await c.query('INSERT INTO float_cmp (id, f, fn) VALUES (1, 0.1, NULL), (2, 1.5, -2.75), (3, 16777200, 3.4e38)');
          await cluster.waitCaughtUp([1], 3);
          const direct = await connectMariaDb(t, cluster, 1, MYSQL_DATABASE);
          const diffs = [
            ...differences('query', await rowsOf(c, 'SELECT * FROM float_cmp ORDER BY id'), await rowsOf(direct, 'SELECT * FROM float_cmp ORDER BY id'), undefined, undefined),
            ...differences('execute', await rowsOf(c, 'SELECT * FROM float_cmp WHERE id > ? ORDER BY id', [0]), await rowsOf(direct, 'SELECT * FROM float_cmp WHERE id > ? ORDER BY id', [0]), undefined, undefined),
          ];
          assert.deepEqual(diffs, [], `mysql2 sees differences between the front end and MariaDB:\n${diffs.join('\n')}`);
          await c.query('INSERT INTO float_cmp (id, f) VALUES (4, 16777217)');
          await cluster.waitCaughtUp([1], 3);
          const [[viaQuery]] = (await c.query('SELECT f FROM float_cmp WHERE id = 4')) as unknown as [[{ f: number }]];
          const [[directQuery]] = (await direct.query('SELECT f FROM float_cmp WHERE id = 4')) as unknown as [[{ f: number }]];
          assert.equal(viaQuery.f, directQuery.f, 'the text protocol rounds a FLOAT to 6 digits on both');
          await assertReplicasIdentical(cluster, ['float_cmp']);
        });
      });
    } else {
      test('mysql2 query and execute on a follower: ints, doubles, UTF-8, NULL, Buffers and date strings round-trip', { timeout: 120_000 }, async (t) => {
        const cluster = fx.take(t);
        if (cluster === null) return;
        await cluster.check(async () => {
          await cluster.waitForCoordinator(3);
          const c = await connectNode(t, cluster, 1);
          await createTable(cluster, c, 'CREATE TABLE types_rt (id INTEGER PRIMARY KEY, i INTEGER, big INTEGER, dbl REAL, s TEXT, b BLOB, dt DATETIME, da DATE, n INTEGER)');
          const [q] = await c.query<ResultSetHeader>(
            "INSERT INTO types_rt (i, big, dbl, s, b, dt, da, n) VALUES (-42, 9007199254740991, 3.141592653589793, 'héllo 😀 ✓', x'00ff10', '2024-02-29 13:14:15', '2024-02-29', NULL)",
          );
          assert.deepEqual([q.affectedRows, q.insertId], [1, 1]);
          const [e] = await c.execute<ResultSetHeader>('INSERT INTO types_rt (i, big, dbl, s, b, dt, da, n) VALUES (?, ?, ?, ?, ?, ?, ?, ?)', [
            7, -9007199254740991, 1e300, 'ñ 🎉', Buffer.from([1, 2, 3, 0]), new Date(Date.UTC(2023, 0, 2, 3, 4, 5)), '2023-01-02', null,
          ]);
          assert.deepEqual([e.affectedRows, e.insertId], [1, 2]);
          const expected = [
            { id: 1, i: -42, big: 9007199254740991, dbl: 3.141592653589793, s: 'héllo 😀 ✓', b: Buffer.from([0x00, 0xff, 0x10]), dt: '2024-02-29 13:14:15', da: '2024-02-29', n: null },
            { id: 2, i: 7, big: -9007199254740991, dbl: 1e300, s: 'ñ 🎉', b: Buffer.from([1, 2, 3, 0]), dt: '2023-01-02 03:04:05', da: '2023-01-02', n: null },
          ];
          // New connections (other sessions) read what their node has applied: wait for all of it.
          await cluster.waitCaughtUp([1, 2, 3], 3);
          for (const opts of [{}, { supportBigNumbers: true }]) {
            for (const id of [1, 2, 3]) {
              const fe = await connectNode(t, cluster, id, opts);
              const plain = (rows: RowDataPacket[]): unknown[] => rows.map((r) => ({ ...r }));
              assert.deepEqual(plain(await rowsOf(fe, 'SELECT * FROM types_rt ORDER BY id')), expected, `node ${id}, query, ${JSON.stringify(opts)}`);
              assert.deepEqual(plain(await rowsOf(fe, 'SELECT * FROM types_rt WHERE id >= ? ORDER BY id', [1])), expected, `node ${id}, execute, ${JSON.stringify(opts)}`);
            }
          }
          await assertReplicasIdentical(cluster, ['types_rt']);
        });
      });

      test('mysql2 reads integers beyond 2^53 exactly (as SQLite stores them)', { timeout: 60_000 }, async (t) => {
        const cluster = fx.take(t);
        if (cluster === null) return;
        await cluster.check(async () => {
          await cluster.waitForCoordinator(3);
          const c = await connectNode(t, cluster, 1, { supportBigNumbers: true });
          await createTable(cluster, c, 'CREATE TABLE bigint_rt (id INTEGER PRIMARY KEY, big INTEGER NOT NULL)');
          await c.query('INSERT INTO bigint_rt (id, big) VALUES (1, 9007199254740993), (2, 9223372036854775807)');
          await c.execute('INSERT INTO bigint_rt (id, big) VALUES (?, ?)', [3, '-9223372036854775808']);
          // SQLite holds the exact values ...
          assert.deepEqual((await rowsOf(c, 'SELECT CAST(big AS TEXT) AS text FROM bigint_rt ORDER BY id')).map((r) => r['text']), ['9007199254740993', '9223372036854775807', '-9223372036854775808']);
          // ... and a client that asks for big numbers gets them, as from MariaDB.
          const want = ['9007199254740993', '9223372036854775807', '-9223372036854775808'];
          assert.deepEqual((await rowsOf(c, 'SELECT big FROM bigint_rt ORDER BY id')).map((r) => r['big']), want, 'query');
          assert.deepEqual((await rowsOf(c, 'SELECT big FROM bigint_rt WHERE id > ? ORDER BY id', [0])).map((r) => r['big']), want, 'execute');
        });
      });
    }

    test('mysql2 writes on a follower: affectedRows and insertId; duplicate key 1062 23000; unsafe statements refused with 1235', { timeout: 120_000 }, async (t) => {
      const cluster = fx.take(t);
      if (cluster === null) return;
      await cluster.check(async () => {
        await cluster.waitForCoordinator(3);
        const c = await connectNode(t, cluster, 1);
        const ddl = `CREATE TABLE writes_t (id ${cluster.dialect.autoId}, k VARCHAR(20) NOT NULL UNIQUE, v INT NOT NULL)`;
        /** Runs the same writes on `conn`, returning [affectedRows, insertId] of each. */
        const writes = async (conn: Connection): Promise<number[][]> => {
          const out: number[][] = [];
          const add = (r: ResultSetHeader): void => void out.push([r.affectedRows, r.insertId]);
          add((await conn.query<ResultSetHeader>("INSERT INTO writes_t (k, v) VALUES ('a', 1)"))[0]);
          add((await conn.execute<ResultSetHeader>('INSERT INTO writes_t (k, v) VALUES (?, ?)', ['b', 1]))[0]);
          add((await conn.execute<ResultSetHeader>('UPDATE writes_t SET v = ? WHERE v = ?', [5, 1]))[0]);
          add((await conn.query<ResultSetHeader>("UPDATE writes_t SET v = 6 WHERE k = 'nope'"))[0]);
          add((await conn.execute<ResultSetHeader>('DELETE FROM writes_t WHERE k = ?', ['a']))[0]);
          add((await conn.query<ResultSetHeader>("INSERT INTO writes_t (k, v) VALUES ('c', 3)"))[0]);
          return out;
        };
        await createTable(cluster, c, ddl);
        const got = await writes(c);
        assert.deepEqual(got, [[1, 1], [1, 2], [2, 0], [0, 0], [1, 0], [1, 3]], '[affectedRows, insertId] of each write');
        const [multi] = await c.query<ResultSetHeader>("INSERT INTO writes_t (k, v) VALUES ('d', 4), ('e', 5)");
        assert.equal(multi.affectedRows, 2);
        if (cluster.engine === 'mysql') {
          // MySQL reports the id of the FIRST row of a multi-row INSERT.
          assert.equal(multi.insertId, 4);
          // The same statements on a scratch database of node 1's MariaDB, straight: the same answers.
          const direct = await connectMariaDb(t, cluster, 1, MYSQL_DATABASE);
          await direct.query('CREATE DATABASE IF NOT EXISTS cmp_writes');
          t.after(async () => void (await direct.query('DROP DATABASE IF EXISTS cmp_writes').catch(() => undefined)));
          await direct.query('USE cmp_writes');
          await direct.query('DROP TABLE IF EXISTS writes_t');
          await direct.query(ddl);
          assert.deepEqual(await writes(direct), got, 'MariaDB answers the same writes with the same affectedRows and insertId');
          const dup = await mysqlError(direct.query("INSERT INTO writes_t (k, v) VALUES ('b', 9)"), 'duplicate on MariaDB');
          const feDup = await mysqlError(c.query("INSERT INTO writes_t (k, v) VALUES ('b', 9)"), 'duplicate through the front end');
          assert.deepEqual(feDup, dup, 'the duplicate key error is MariaDB\'s own');
        }

        for (const [how, p] of [
          ['query', () => c.query("INSERT INTO writes_t (k, v) VALUES ('b', 9)")],
          ['execute', () => c.execute('INSERT INTO writes_t (k, v) VALUES (?, ?)', ['c', 9])],
        ] as const) {
          const err = await mysqlError(p(), `duplicate key via ${how}`);
          assert.equal(err.errno, 1062, `${how}: ${err.message}`);
          assert.equal(err.sqlState, '23000');
          assert.equal(err.code, 'ER_DUP_ENTRY');
        }

        await createTable(cluster, c, `CREATE TABLE unsafe_t (id ${cluster.dialect.autoId}, v VARCHAR(64))`);
        const [fn, unsafe] = cluster.engine === 'mysql' ? ['UUID', 'UUID()'] : ['last_insert_rowid', 'last_insert_rowid()'];
        for (const [how, p] of [
          ['query', () => c.query(`INSERT INTO unsafe_t (v) VALUES (${unsafe})`)],
          ['execute', () => c.execute(`INSERT INTO unsafe_t (v) VALUES (${unsafe})`)],
        ] as const) {
          const err = await mysqlError(p(), `unsafe statement via ${how}`);
          assert.equal(err.errno, 1235, `${how}: ${err.message}`);
          assert.equal(err.sqlState, '42000');
          assert.match(err.message, new RegExp(`\\b${fn}\\b`), `${how}: the message names ${fn}: ${err.message}`);
        }
        // The connection goes on; nothing of the refused statements exists anywhere.
        await c.query("INSERT INTO unsafe_t (v) VALUES ('safe')");
        await assertReplicasIdentical(cluster, ['writes_t', 'unsafe_t']);
        for (const id of [1, 2, 3]) {
          assert.deepEqual((await cluster.dump(id, 'unsafe_t', 'id')).map((r) => r[1]), ['safe'], `node ${id}`);
          assert.deepEqual(await cluster.dump(id, 'writes_t', 'id'), [[2, 'b', 5], [3, 'c', 3], [4, 'd', 4], [5, 'e', 5]], `node ${id}`);
        }
      });
    });

    test('errors a MySQL client sees: no such table 1146, unknown column 1054, a syntax error 1064 (as MariaDB reports them)', { timeout: 60_000 }, async (t) => {
      const cluster = fx.take(t);
      if (cluster === null) return;
      await cluster.check(async () => {
        await cluster.waitForCoordinator(3);
        const c = await connectNode(t, cluster, 1);
        await createTable(cluster, c, 'CREATE TABLE err_t (id INT PRIMARY KEY, v INT)');
        const cases: [string, number, string][] = [
          ['SELECT * FROM no_such_table', 1146, '42S02'],
          ['SELECT no_such_column FROM err_t', 1054, '42S22'],
          ['SELEC 1', 1064, '42000'],
          ['SELECT * FROM err_t WHERE', 1064, '42000'],
          ['INSERT INTO err_t (id, v) VALUES (1, 2', 1064, '42000'],
        ];
        const direct = cluster.engine === 'mysql' ? await connectMariaDb(t, cluster, 1, MYSQL_DATABASE) : null;
        const wrong: string[] = [];
        for (const [sql, errno, sqlState] of cases) {
          const got = await mysqlError(c.query(sql), sql);
          const want = direct === null ? { errno, sqlState } : await mysqlError(direct.query(sql), `${sql} on MariaDB`);
          if (got.errno !== want.errno || got.sqlState !== want.sqlState || got.errno !== errno) {
            wrong.push(`${sql}: front end ERROR ${String(got.errno)} (${String(got.sqlState)}) ${got.message}; expected ERROR ${String(want.errno)} (${String(want.sqlState)})${direct === null ? '' : ' as MariaDB answers'}`);
          }
        }
        assert.deepEqual(wrong, [], wrong.join('\n'));
      });
    });

    test('mysql2 transactions on a follower: beginTransaction/commit is one log entry on every node, rollback leaves nothing', { timeout: 120_000 }, async (t) => {
      const cluster = fx.take(t);
      if (cluster === null) return;
      await cluster.check(async () => {
        await cluster.waitForCoordinator(3);
        const c = await connectNode(t, cluster, 1);
        const other = await connectNode(t, cluster, 2);
        await createTable(cluster, c, 'CREATE TABLE txn_acct (id INT PRIMARY KEY, owner VARCHAR(20) NOT NULL, balance INT NOT NULL)');
        await c.query("INSERT INTO txn_acct (id, owner, balance) VALUES (1, 'ann', 100), (2, 'bob', 50)");
        await cluster.waitCaughtUp([1, 2, 3], 3);
        const before = (await cluster.status(3)).commitIndex;

        await c.beginTransaction();
        await c.execute('UPDATE txn_acct SET balance = balance - ? WHERE id = ?', [30, 1]);
        await c.query('UPDATE txn_acct SET balance = balance + 30 WHERE id = 2');
        assert.deepEqual(await rowsOf(c, 'SELECT id, balance FROM txn_acct ORDER BY id'), [{ id: 1, balance: 70 }, { id: 2, balance: 80 }], 'reads inside see the transaction');
        assert.deepEqual(await rowsOf(c, 'SELECT balance FROM txn_acct WHERE id = ?', [1]), [{ balance: 70 }], 'prepared reads inside too');
        assert.deepEqual(await rowsOf(other, 'SELECT balance FROM txn_acct ORDER BY id'), [{ balance: 100 }, { balance: 50 }], 'others do not see uncommitted writes');
        const dup = await mysqlError(c.query("INSERT INTO txn_acct (id, owner, balance) VALUES (1, 'again', 0)"), 'duplicate inside the transaction');
        assert.equal(dup.errno, 1062, dup.message);
        await c.execute('INSERT INTO txn_acct (id, owner, balance) VALUES (?, ?, ?)', [3, 'cy', 7]);
        await c.commit();
        assert.equal((await cluster.status(3)).commitIndex - before, 1, 'the transaction was replicated as one log entry');
        assert.deepEqual(await rowsOf(c, 'SELECT id, balance FROM txn_acct ORDER BY id'), [{ id: 1, balance: 70 }, { id: 2, balance: 80 }, { id: 3, balance: 7 }], 'the committer reads its commit');

        await c.beginTransaction();
        await c.query('DELETE FROM txn_acct');
        await c.execute('INSERT INTO txn_acct (id, owner, balance) VALUES (?, ?, ?)', [9, 'temp', 1]);
        assert.deepEqual(await rowsOf(c, 'SELECT id FROM txn_acct'), [{ id: 9 }]);
        await c.rollback();
        assert.equal((await cluster.status(3)).commitIndex - before, 1, 'a rollback logs nothing');
        assert.deepEqual(await rowsOf(c, 'SELECT id FROM txn_acct ORDER BY id'), [{ id: 1 }, { id: 2 }, { id: 3 }]);

        await cluster.waitCaughtUp([1, 2, 3], 3);
        for (const id of [1, 2, 3]) {
          assert.deepEqual(await cluster.dump(id, 'txn_acct', 'id'), [[1, 'ann', 70], [2, 'bob', 80], [3, 'cy', 7]], `node ${id}`);
        }
        await assertReplicasIdentical(cluster, ['txn_acct']);
      });
    });

    test('read-your-writes: connections on followers read their own writes at once, many times', { timeout: 180_000 }, async (t) => {
      const cluster = fx.take(t);
      if (cluster === null) return;
      await cluster.check(async () => {
        await cluster.waitForCoordinator(3);
        const setup = await connectNode(t, cluster, 1);
        await createTable(cluster, setup, 'CREATE TABLE ryw (id INT PRIMARY KEY, v INT NOT NULL)');
        const rounds = 80;
        const loop = async (node: number, base: number): Promise<string[]> => {
          const c = await connectNode(t, cluster, node);
          const misses: string[] = [];
          for (let i = 0; i < rounds; i++) {
            const id = base + i;
            await c.query(`INSERT INTO ryw (id, v) VALUES (${id}, ${i})`);
            const seen = await rowsOf(c, `SELECT v FROM ryw WHERE id = ${id}`);
            if (seen.length !== 1 || seen[0]!['v'] !== i) misses.push(`node ${node}: insert of ${id} then SELECT gave ${JSON.stringify(seen)}`);
            await c.execute('UPDATE ryw SET v = ? WHERE id = ?', [i + 1000, id]);
            const updated = await rowsOf(c, 'SELECT v FROM ryw WHERE id = ?', [id]);
            if (updated.length !== 1 || updated[0]!['v'] !== i + 1000) misses.push(`node ${node}: update of ${id} then SELECT gave ${JSON.stringify(updated)}`);
          }
          const [count] = await rowsOf(c, `SELECT COUNT(*) AS n FROM ryw WHERE id >= ${base} AND id < ${base + rounds}`);
          if (Number(count!['n']) !== rounds) misses.push(`node ${node}: ${String(count!['n'])} of its ${rounds} rows visible`);
          return misses;
        };
        const started = Date.now();
        const misses = (await Promise.all([loop(1, 1000), loop(2, 2000), loop(1, 3000)])).flat();
        assert.deepEqual(misses, [], 'every read saw the session\'s own last write');
        process.stderr.write(`[mysql-clients ${engine}] read-your-writes: ${3 * rounds} inserts and ${3 * rounds} updates, each read back at once, in ${Date.now() - started} ms\n`);
        await assertReplicasIdentical(cluster, ['ryw']);
      });
    });

    test('read-your-writes covers prepared statements: a follower prepares statements on the table its session just created', { timeout: 120_000 }, async (t) => {
      const cluster = fx.take(t);
      if (cluster === null) return;
      await cluster.check(async () => {
        await cluster.waitForCoordinator(3);
        const c = await connectNode(t, cluster, 1);
        const misses: string[] = [];
        const rounds = 15;
        for (let i = 0; i < rounds; i++) {
          const table = `ryw_prep_${i}`;
          await c.query(`CREATE TABLE ${table} (id INT PRIMARY KEY, v INT NOT NULL)`);
          // COM_STMT_PREPARE right after the session's own CREATE TABLE, then right after its own INSERT.
          try {
            const rows = await rowsOf(c, `SELECT v FROM ${table} WHERE id = ?`, [1]);
            if (rows.length !== 0) misses.push(`${table}: SELECT right after CREATE TABLE gave ${JSON.stringify(rows)}`);
          } catch (err) {
            const e = err as { errno?: number; message?: string };
            misses.push(`${table}: prepared SELECT right after the session's CREATE TABLE: ERROR ${String(e.errno)}: ${String(e.message)}`);
          }
          await c.query(`INSERT INTO ${table} (id, v) VALUES (1, ${i})`);
          try {
            await c.execute(`UPDATE ${table} SET v = v + ? WHERE id = ?`, [100, 1]);
            const rows = await rowsOf(c, `SELECT v FROM ${table} WHERE id = ? AND v >= ?`, [1, 0]);
            if (rows.length !== 1 || rows[0]!['v'] !== i + 100) misses.push(`${table}: SELECT after UPDATE gave ${JSON.stringify(rows)}`);
          } catch (err) {
            const e = err as { errno?: number; message?: string };
            misses.push(`${table}: prepared UPDATE/SELECT right after the session's INSERT: ERROR ${String(e.errno)}: ${String(e.message)}`);
          }
        }
        assert.deepEqual(misses, [], `${misses.length} prepared statements did not see the session's own writes:\n${misses.join('\n')}`);
      });
    });

    test('no quorum over MySQL: with nodes 2 and 3 killed a write through node 1 fails with 1047 (NO_QUORUM), reads still work', { timeout: 120_000 }, async (t) => {
      const cluster = fx.take(t);
      if (cluster === null) return;
      await cluster.check(async () => {
        await cluster.waitForCoordinator(3);
        const c = await connectNode(t, cluster, 1);
        await createTable(cluster, c, `CREATE TABLE nq_t (id INT PRIMARY KEY, body VARCHAR(40) NOT NULL)`);
        await c.query("INSERT INTO nq_t (id, body) VALUES (1, 'before')");
        await cluster.waitCaughtUp([1, 2, 3], 3);

        await cluster.kill(2);
        await cluster.kill(3);
        await waitUntil(
          'node 1 to see nodes 2 and 3 offline',
          async () => {
            const s = await cluster.status(1);
            return s.nodes.filter((x) => x.id !== 1).every((x) => !x.online) ? s : undefined;
          },
          { timeoutMs: 30_000, intervalMs: 50 },
        );
        for (const [how, p] of [
          ['query', () => c.query("INSERT INTO nq_t (id, body) VALUES (2, 'refused')")],
          ['execute', () => c.execute('INSERT INTO nq_t (id, body) VALUES (?, ?)', [3, 'refused'])],
        ] as const) {
          const err = await mysqlError(p(), `write via ${how} without quorum`);
          assert.equal(err.errno, 1047, `${how}: ${err.message}`);
          assert.equal(err.sqlState, '08S01');
          assert.match(err.message, /NO_QUORUM|NO_COORDINATOR/, `${how}: ${err.message}`);
        }
        // A transaction cannot start its writes either.
        await c.beginTransaction();
        const inTxn = await mysqlError(c.query("INSERT INTO nq_t (id, body) VALUES (4, 'refused')"), 'write in a transaction without quorum');
        assert.ok([1047, 1213].includes(inTxn.errno ?? 0), `${String(inTxn.errno)}: ${inTxn.message}`);
        await c.rollback();
        // Reads are answered from node 1's own database.
        assert.deepEqual(await rowsOf(c, 'SELECT id, body FROM nq_t ORDER BY id'), [{ id: 1, body: 'before' }]);
        assert.deepEqual(await rowsOf(c, 'SELECT body FROM nq_t WHERE id = ?', [1]), [{ body: 'before' }]);

        await Promise.all([cluster.start(2), cluster.start(3)]);
        await cluster.waitForCoordinator(3);
        await waitUntil('a write through node 1 to succeed again', async () => {
          try {
            await c.query("INSERT INTO nq_t (id, body) VALUES (5, 'after')");
            return true;
          } catch (err) {
            if ((err as { errno?: number }).errno === 1062) return true; // an earlier attempt was applied
            return false;
          }
        }, { timeoutMs: 30_000, intervalMs: 200 });
        await assertReplicasIdentical(cluster, ['nq_t']);
        for (const id of [1, 2, 3]) {
          assert.deepEqual(await cluster.dump(id, 'nq_t', 'id'), [[1, 'before'], [5, 'after']], `node ${id}: none of the refused writes`);
        }
      });
    });

    test('a transaction open through node 1 when the coordinator (node 3) is SIGKILLed fails with 1213 (or 1047), and nothing of it is anywhere', { timeout: 120_000 }, async (t) => {
      const cluster = fx.take(t);
      if (cluster === null) return;
      await cluster.check(async () => {
        await cluster.waitForCoordinator(3);
        const c = await connectNode(t, cluster, 1);
        await createTable(cluster, c, 'CREATE TABLE doomed_t (id INT PRIMARY KEY, body VARCHAR(40) NOT NULL)');
        await c.query("INSERT INTO doomed_t (id, body) VALUES (1, 'kept')");

        await c.beginTransaction();
        await c.query("INSERT INTO doomed_t (id, body) VALUES (10, 'doomed')");
        await c.execute('UPDATE doomed_t SET body = ? WHERE id = ?', ['doomed', 1]);
        await cluster.kill(3);
        const started = Date.now();
        const err = await mysqlError(
          (async () => {
            // The statement may reach the dead coordinator (connection lost) or find none; if it
            // somehow succeeded, the COMMIT must fail.
            await c.query("INSERT INTO doomed_t (id, body) VALUES (11, 'doomed')");
            await c.commit();
          })(),
          'the transaction after the coordinator died',
        );
        assert.ok(err.errno === 1213 || err.errno === 1047, `errno ${String(err.errno)} (${String(err.sqlState)}): ${err.message}`);
        if (err.errno === 1213) {
          assert.equal(err.sqlState, '40001');
          assert.match(err.message, /TRANSACTION_ABORTED/);
        } else assert.match(err.message, /NO_COORDINATOR|NO_QUORUM/);
        process.stderr.write(`[mysql-clients ${engine}] coordinator killed mid-transaction: ERROR ${String(err.errno)} after ${Date.now() - started} ms: ${err.message}\n`);

        // The connection is usable again once node 2 coordinates.
        await cluster.waitForCoordinator(2, [1, 2]);
        await c.rollback().catch(() => undefined);
        await waitUntil('an autocommit write through node 1 to succeed', async () => {
          try {
            await c.query("INSERT INTO doomed_t (id, body) VALUES (20, 'after')");
            return true;
          } catch (e) {
            return (e as { errno?: number }).errno === 1062 ? true : false;
          }
        }, { timeoutMs: 30_000, intervalMs: 200 });

        await cluster.start(3);
        await cluster.waitForCoordinator(3);
        await assertReplicasIdentical(cluster, ['doomed_t']);
        for (const id of [1, 2, 3]) {
          assert.deepEqual(await cluster.dump(id, 'doomed_t', 'id'), [[1, 'kept'], [20, 'after']], `node ${id}: nothing of the aborted transaction`);
        }
        if (cluster.engine === 'mysql') {
          // Straight from each MariaDB instance, too.
          for (const id of [1, 2, 3]) {
            const rows = (await cluster.db(id).sql(MYSQL_DATABASE, 'SELECT id, body FROM doomed_t ORDER BY id')) as { id: number; body: string }[];
            assert.deepEqual(rows.map((r) => [r.id, r.body]), [[1, 'kept'], [20, 'after']], `MariaDB of node ${id}`);
          }
        }
      });
    });
  });
}
