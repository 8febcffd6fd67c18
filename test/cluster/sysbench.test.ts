// sysbench (libmariadb, prepared statements by default) against the MySQL front ends of a 3-node
// cluster on MariaDB (one instance per node), its connections spread over the three nodes:
// `prepare` of 2 tables of 1000 rows, then `run` of oltp_read_write, oltp_insert and
// oltp_point_select, 8 threads for 5 s each. Every run must exit 0 without FATAL, commit
// transactions and ignore no error (sysbench ignores and retries 1213 deadlocks, counting them
// as "ignored errors": there must be none). Afterwards every node applies everything and the three
// MariaDB instances hold identical tables (CHECKSUM TABLE and row counts, read from each instance
// directly), with exactly the rows sysbench reported inserting. Throughput is printed, never asserted.
//
// Skipped with a message when sysbench is not installed, unless REPLISQL_REQUIRE_MYSQL=1 (CI): then
// a missing sysbench fails the test.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import mysql, { type Connection, type RowDataPacket } from 'mysql2/promise';
import { MYSQL_DATABASE, runProcess, useCluster, type Cluster, type ProcessRun } from './harness.js';

function which(bin: string): string | null {
  const r = spawnSync('sh', ['-c', `command -v ${bin}`], { encoding: 'utf8' });
  return r.status === 0 && r.stdout.trim() !== '' ? r.stdout.trim() : null;
}

const SYSBENCH = which('sysbench');
const REQUIRE_MYSQL = process.env['REPLISQL_REQUIRE_MYSQL'] === '1';
const TABLES = ['sbtest1', 'sbtest2'];
const TABLE_SIZE = 1000;
const SKIP = SYSBENCH === null && !REQUIRE_MYSQL ? 'sysbench is not installed (apt-get install sysbench); the sysbench cluster test is skipped' : false;
if (SKIP !== false) process.stderr.write(`[sysbench] ${SKIP}\n`);

function run(cmd: string, args: readonly string[], timeoutMs: number): Promise<ProcessRun> {
  return runProcess(cmd, args, { timeoutMs });
}

/** The "SQL statistics" of a sysbench run. */
interface Stats {
  readonly read: number;
  readonly write: number;
  readonly other: number;
  readonly total: number;
  readonly transactions: number;
  readonly tps: number;
  readonly queries: number;
  readonly ignoredErrors: number;
  readonly reconnects: number;
}

function parseStats(out: string): Stats {
  const num = (re: RegExp, what: string): number => {
    const m = re.exec(out);
    if (m === null) throw new Error(`sysbench output has no "${what}" line:\n${out}`);
    return Number(m[1]);
  };
  return {
    read: num(/^\s+read:\s+(\d+)$/m, 'read'),
    write: num(/^\s+write:\s+(\d+)$/m, 'write'),
    other: num(/^\s+other:\s+(\d+)$/m, 'other'),
    total: num(/^\s+total:\s+(\d+)$/m, 'total'),
    transactions: num(/^\s+transactions:\s+(\d+)\s/m, 'transactions'),
    tps: num(/^\s+transactions:\s+\d+\s+\(([\d.]+) per sec\.\)/m, 'transactions per sec.'),
    queries: num(/^\s+queries:\s+(\d+)\s/m, 'queries'),
    ignoredErrors: num(/^\s+ignored errors:\s+(\d+)\s/m, 'ignored errors'),
    reconnects: num(/^\s+reconnects:\s+(\d+)\s/m, 'reconnects'),
  };
}

function sysbenchArgs(cluster: Cluster): string[] {
  const ports = [1, 2, 3].map((id) => cluster.mysqlAddress(id).port).join(',');
  return [
    '--db-driver=mysql',
    '--mysql-host=127.0.0.1',
    `--mysql-port=${ports}`,
    '--mysql-user=root',
    '--mysql-password=',
    `--mysql-db=${MYSQL_DATABASE}`,
    `--tables=${TABLES.length}`,
    `--table-size=${TABLE_SIZE}`,
  ];
}

/** Exit code 0, no FATAL anywhere, and the whole output on failure. */
function assertClean(r: ProcessRun, what: string): void {
  const all = `${what}: exit ${String(r.code)}${r.signal !== null ? ` (${r.signal})` : ''}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`;
  assert.equal(r.code, 0, all);
  assert.doesNotMatch(r.stdout + r.stderr, /FATAL/, all);
}

describe('mysql: sysbench through the MySQL front ends of a 3-node cluster', { skip: SKIP }, () => {
  // A failure timeout of 4 s rather than the harness's 1.5 s: a loaded machine that stalls a node for
  // a couple of seconds must not turn into a failover (and aborted transactions) in the middle of a run.
  const fx = useCluster({ engine: 'mysql', nodes: 3, mysqlFrontEnd: true, heartbeatIntervalMs: 500, failureTimeoutMs: 4000 });

  test('prepare, then oltp_read_write, oltp_insert and oltp_point_select (8 threads, 5 s each) run without errors; the three MariaDB instances end identical', { timeout: 180_000 }, async (t) => {
    const cluster = fx.take(t);
    if (cluster === null) return;
    await cluster.check(async () => {
      if (SYSBENCH === null) throw new Error('sysbench is not installed, and REPLISQL_REQUIRE_MYSQL=1 requires it (apt-get install sysbench)');
      await cluster.waitForCoordinator(3);
      const args = sysbenchArgs(cluster);

      const prep = await run(SYSBENCH, ['oltp_read_write', ...args, 'prepare'], 120_000);
      assertClean(prep, 'sysbench prepare');
      for (const table of TABLES) assert.match(prep.stdout, new RegExp(`Inserting ${TABLE_SIZE} records into '${table}'`), prep.stdout);
      process.stderr.write(`[sysbench] prepare: ${TABLES.length} tables of ${TABLE_SIZE} rows in ${(prep.ms / 1000).toFixed(1)} s\n`);

      const stats: Record<string, Stats> = {};
      for (const workload of ['oltp_read_write', 'oltp_insert', 'oltp_point_select']) {
        const r = await run(SYSBENCH, [workload, ...args, '--threads=8', '--time=5', 'run'], 60_000);
        assertClean(r, `sysbench ${workload} run`);
        const s = parseStats(r.stdout);
        stats[workload] = s;
        process.stderr.write(
          `[sysbench] ${workload}: ${s.transactions} transactions (${s.tps}/s), ${s.queries} queries (read ${s.read}, write ${s.write}, other ${s.other}), ` +
            `ignored errors ${s.ignoredErrors}, reconnects ${s.reconnects}, ${(r.ms / 1000).toFixed(1)} s\n`,
        );
        assert.ok(s.transactions > 0, `${workload}: no transaction completed\n${r.stdout}`);
        assert.equal(s.ignoredErrors, 0, `${workload}: sysbench ignored ${s.ignoredErrors} errors\n${r.stdout}${r.stderr}`);
        assert.equal(s.reconnects, 0, `${workload}: ${s.reconnects} reconnects\n${r.stdout}`);
      }
      const rw = stats['oltp_read_write']!;
      assert.ok(rw.read > 0 && rw.write > 0, 'oltp_read_write read and wrote');
      const ins = stats['oltp_insert']!;
      assert.equal(ins.read, 0);
      assert.equal(ins.write, ins.transactions, 'oltp_insert: one INSERT per transaction');
      const ps = stats['oltp_point_select']!;
      assert.ok(ps.read > 0, 'oltp_point_select read');
      assert.equal(ps.write, 0, 'oltp_point_select wrote nothing');

      // Every node applies everything; the instances hold the same tables, read directly.
      await cluster.waitForCoordinator(3, [1, 2, 3]);
      const index = await cluster.waitCaughtUp([1, 2, 3], 3, 60_000);
      const sums = await cluster.assertSameChecksums([1, 2, 3], TABLES);
      assert.ok(sums !== null);
      // oltp_read_write deletes and re-inserts the same ids (no net change); oltp_insert adds one row per write.
      const counts = TABLES.map((table) => Number(/^rows=(\d+) /.exec(sums[table]!)?.[1]));
      assert.equal(counts[0]! + counts[1]!, TABLES.length * TABLE_SIZE + ins.write, `rows: ${JSON.stringify(sums)}`);
      // The front end of each node counts the same rows from its own database.
      for (const id of [1, 2, 3]) {
        const address: { host: string; port: number } = cluster.mysqlAddress(id);
        const c: Connection = await mysql.createConnection({ ...address, user: 'root', password: '', database: MYSQL_DATABASE });
        try {
          for (const [i, table] of TABLES.entries()) {
            const [rows] = await c.query<RowDataPacket[]>(`SELECT COUNT(*) AS n FROM ${table}`);
            assert.equal(Number(rows[0]?.['n']), counts[i], `node ${id}: rows of ${table}`);
          }
        } finally {
          await c.end();
        }
      }
      process.stderr.write(`[sysbench] after the runs: every node applied up to log index ${index}; ${TABLES.map((x) => `${x} ${sums[x]}`).join(', ')} on all three instances\n`);
    });
  });
});
