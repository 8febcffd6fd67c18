import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { ErrorCode, ReplisqlError, UnsafeStatementError } from '../../src/errors.js';
import { pinSqliteNondeterminism, SqlLexError, type PinContext } from '../../src/sql/index.js';

const NOW_MS = Date.UTC(2024, 1, 29, 13, 45, 6, 789); // 2024-02-29 13:45:06.789 UTC

/** A context whose random() returns the given values in turn and whose bytes count up. */
function context(randoms: readonly bigint[] = [42n], nowMs = NOW_MS): PinContext & { calls: { random: number; bytes: number[] } } {
  const calls = { random: 0, bytes: [] as number[] };
  return {
    nowMs,
    random: () => randoms[calls.random++ % randoms.length]!,
    randomBytes: (n) => {
      calls.bytes.push(n);
      return Uint8Array.from({ length: n }, (_, i) => (i * 37 + 11) & 0xff);
    },
    calls,
  };
}

function pin(sql: string, ctx: PinContext = context()): string {
  return pinSqliteNondeterminism(sql, ctx);
}

/** Pins and runs a single SELECT in a fresh in-memory database; returns its one row. */
function pinnedRow(sql: string, ctx: PinContext = context()): Record<string, unknown> {
  const db = new Database(':memory:');
  try {
    return db.prepare(pin(sql, ctx)).safeIntegers().get() as Record<string, unknown>;
  } finally {
    db.close();
  }
}

function refusal(sql: string): UnsafeStatementError {
  try {
    pin(sql);
  } catch (e) {
    assert.ok(e instanceof UnsafeStatementError, `expected UnsafeStatementError, got ${String(e)}`);
    assert.equal(e.code, ErrorCode.UNSAFE_STATEMENT);
    return e;
  }
  assert.fail(`expected ${JSON.stringify(sql)} to be refused`);
}

describe('pinSqliteNondeterminism: time', () => {
  it('rewrites CURRENT_TIMESTAMP, CURRENT_DATE and CURRENT_TIME to UTC literals', () => {
    assert.equal(
      pin('INSERT INTO t VALUES (CURRENT_TIMESTAMP, current_date, Current_Time)'),
      "INSERT INTO t VALUES ('2024-02-29 13:45:06', '2024-02-29', '13:45:06')",
    );
  });

  it("rewrites 'now' in every date function; SQLite then computes from the pinned instant", () => {
    const row = pinnedRow(
      `SELECT datetime('now') AS dt, date('NOW') AS d, time('Now') AS tm, julianday('now') AS jd,
              unixepoch('now') AS ue, unixepoch('now', 'subsec') AS ues, strftime('%Y-%m-%d %H:%M:%f', 'now') AS sf,
              datetime('now', '+1 day', 'start of day') AS tomorrow`,
    );
    assert.deepEqual(row, {
      dt: '2024-02-29 13:45:06',
      d: '2024-02-29',
      tm: '13:45:06',
      jd: NOW_MS / 86_400_000 + 2440587.5,
      ue: BigInt(Math.floor(NOW_MS / 1000)),
      ues: NOW_MS / 1000,
      sf: '2024-02-29 13:45:06.789',
      tomorrow: '2024-03-01 00:00:00',
    });
  });

  it('gives date functions without a time value the pinned instant', () => {
    assert.equal(
      pin("SELECT date(), datetime( /* c */ ), strftime('%s'), unixepoch()"),
      "SELECT date('2024-02-29 13:45:06.789'), datetime('2024-02-29 13:45:06.789'), strftime('%s', '2024-02-29 13:45:06.789'), unixepoch('2024-02-29 13:45:06.789')",
    );
    const row = pinnedRow("SELECT date() AS d, strftime('%s') AS s, julianday() AS j");
    assert.deepEqual(row, { d: '2024-02-29', s: String(Math.floor(NOW_MS / 1000)), j: NOW_MS / 86_400_000 + 2440587.5 });
  });

  it("leaves 'now' alone where it is not a time value", () => {
    const sql = "INSERT INTO t VALUES ('now', strftime('now', x), upper('now'), datetime(x, 'now'))";
    assert.equal(pin(sql), sql);
  });

  it('uses one instant for the whole script', () => {
    const out = pin("INSERT INTO a VALUES (datetime('now')); INSERT INTO b VALUES (CURRENT_TIMESTAMP, datetime())");
    assert.equal(
      out,
      "INSERT INTO a VALUES (datetime('2024-02-29 13:45:06.789')); INSERT INTO b VALUES ('2024-02-29 13:45:06', datetime('2024-02-29 13:45:06.789'))",
    );
  });

  it('formats instants near the ends of the supported range', () => {
    assert.equal(pin('SELECT CURRENT_TIMESTAMP', context([1n], 0)), "SELECT '1970-01-01 00:00:00'");
    assert.equal(pin('SELECT CURRENT_DATE', context([1n], Date.UTC(9999, 11, 31))), "SELECT '9999-12-31'");
    assert.throws(() => pin('SELECT CURRENT_DATE', context([1n], 253402300800000)), (e: unknown) => {
      return e instanceof ReplisqlError && e.code === ErrorCode.INTERNAL;
    });
  });

  it('refuses the localtime and utc modifiers, naming them', () => {
    assert.match(refusal("INSERT INTO t VALUES (datetime('now', 'localtime'))").message, /^the 'localtime' modifier in datetime\(\).*time zone/);
    assert.match(refusal("UPDATE t SET d = date(x, 'UTC')").message, /^the 'utc' modifier in date\(\)/);
  });

  it("refuses 'now' or a modifier reaching a date function through an expression", () => {
    assert.match(refusal("INSERT INTO t VALUES (datetime(coalesce(x, 'now')))").message, /^'now' inside an expression passed to datetime\(\)/);
    assert.match(refusal("INSERT INTO t VALUES (date(x, lower('LOCALTIME')))").message, /'localtime' inside an expression passed to date\(\)/);
  });

  it("does not refuse 'utc' or 'localtime' as plain values", () => {
    const sql = "INSERT INTO t VALUES ('utc', 'localtime', strftime('utc', x))";
    assert.equal(pin(sql), sql);
  });
});

describe('pinSqliteNondeterminism: random', () => {
  it('rewrites random() to the context value; negative values are parenthesised', () => {
    assert.equal(pin('INSERT INTO t VALUES (random(), 1-random())', context([7n, -5n])), 'INSERT INTO t VALUES (7, 1-(-5))');
    const row = pinnedRow('SELECT random() AS a, 1-random() AS b, typeof(random()) AS c', context([-(2n ** 63n), -5n, 2n ** 63n - 1n]));
    assert.deepEqual(row, { a: -(2n ** 63n), b: 6n, c: 'integer' });
  });

  it('calls the context once per occurrence', () => {
    const ctx = context([1n, 2n, 3n]);
    assert.equal(pin('SELECT RANDOM(), Random ( ), random(/* x */)', ctx), 'SELECT 1, 2, 3');
    assert.equal(ctx.calls.random, 3);
  });

  it('refuses random() in ORDER BY of a write', () => {
    const e = refusal('DELETE FROM t WHERE id IN (SELECT id FROM t ORDER BY random() LIMIT 1)');
    assert.match(e.message, /^random\(\) in ORDER BY cannot be replicated/);
    assert.match(refusal('INSERT INTO t SELECT x FROM s ORDER BY abs(random()) % 3').message, /random\(\) in ORDER BY/);
    // Outside the ORDER BY list it is pinned.
    assert.equal(pin('INSERT INTO t SELECT x, random() FROM s ORDER BY x LIMIT random()', context([9n])), 'INSERT INTO t SELECT x, 9 FROM s ORDER BY x LIMIT 9');
  });

  it('rewrites randomblob(N) to a blob literal of N bytes', () => {
    const ctx = context();
    const out = pin('INSERT INTO t VALUES (randomblob(4), hex(randomblob(0)))', ctx);
    assert.equal(out, "INSERT INTO t VALUES (X'0B30557A', hex(X'0B'))");
    assert.deepEqual(ctx.calls.bytes, [4, 1]); // SQLite returns one byte for N < 1
    const row = pinnedRow('SELECT hex(randomblob(3)) AS h, length(randomblob(16)) AS n');
    assert.deepEqual(row, { h: '0B3055', n: 16n });
  });

  it('refuses randomblob with a non-literal or too large size', () => {
    assert.match(refusal('INSERT INTO t VALUES (randomblob(n))').message, /^randomblob\(\) cannot be replicated: its size must be an integer literal/);
    assert.match(refusal('INSERT INTO t VALUES (randomblob(?))').message, /^randomblob\(\)/);
    assert.match(refusal('INSERT INTO t VALUES (randomblob(2000000))').message, /^randomblob\(2000000\).*1048576 bytes/);
    assert.match(refusal('INSERT INTO t VALUES (randomblob(99999999999999999999))').message, /^randomblob\(/);
    assert.equal(pin('SELECT length(randomblob(1048576))').length, 'SELECT length('.length + 3 + 2 * 1048576 + 1);
  });

  it('validates what the context returns', () => {
    assert.throws(() => pin('SELECT random()', context([2n ** 63n])), (e: unknown) => e instanceof ReplisqlError && e.code === ErrorCode.INTERNAL);
    const short: PinContext = { nowMs: NOW_MS, random: () => 0n, randomBytes: () => new Uint8Array(1) };
    assert.throws(() => pinSqliteNondeterminism('SELECT randomblob(2)', short), (e: unknown) => e instanceof ReplisqlError && e.code === ErrorCode.INTERNAL);
  });
});

describe('pinSqliteNondeterminism: what is never touched', () => {
  const untouched = [
    "INSERT INTO t VALUES ('random()', 'CURRENT_TIMESTAMP', 'datetime(''now'')')",
    'INSERT INTO t ("current_timestamp", [random], `date`) VALUES (1, 2, 3)',
    'INSERT INTO t VALUES (1) /* random() CURRENT_TIMESTAMP */ -- datetime(\'now\')',
    'INSERT INTO date(a) VALUES (1)',
    'INSERT INTO t VALUES (random(1))',
    'UPDATE t SET x = s.random',
    "INSERT INTO t VALUES (X'00', ?, :p, 1.5)",
  ];
  for (const sql of untouched) {
    it(`leaves ${JSON.stringify(sql)} unchanged`, () => {
      assert.equal(pin(sql), sql);
    });
  }

  it('preserves everything around a rewrite byte for byte', () => {
    const sql = "INSERT INTO t\n\t/* a */ VALUES ( random ( ) ,\r\n 'x''y' , CURRENT_DATE ) ; -- end";
    assert.equal(pin(sql, context([3n])), "INSERT INTO t\n\t/* a */ VALUES ( 3 ,\r\n 'x''y' , '2024-02-29' ) ; -- end");
  });

  it('propagates lex errors', () => {
    assert.throws(() => pin("INSERT INTO t VALUES ('x"), SqlLexError);
  });

  it('stays linear on adversarial input (many arguments, deep nesting)', () => {
    const n = 100_000;
    const manyArgs = `INSERT INTO t VALUES (datetime(x${", 'now'".repeat(n)}), date(${'date('.repeat(n)}1${')'.repeat(n)}))`;
    const deep = `INSERT INTO t VALUES (${'abs('.repeat(n)}'now'${')'.repeat(n)}, ${"'utc', ".repeat(n)}1)`;
    const started = Date.now();
    assert.equal(pin(manyArgs), manyArgs); // 'now' as a modifier is left alone
    assert.equal(pin(deep), deep);
    assert.ok(Date.now() - started < 5_000, `took ${Date.now() - started} ms`);
  });
});

describe('pinSqliteNondeterminism: refusals name the function', () => {
  const cases: readonly (readonly [string, RegExp])[] = [
    ['INSERT INTO t VALUES (changes())', /^changes\(\) cannot be replicated: .*connection/],
    ['INSERT INTO t VALUES (total_changes())', /^total_changes\(\) cannot be replicated/],
    ['INSERT INTO child VALUES (last_insert_rowid(), 1)', /^last_insert_rowid\(\) cannot be replicated/],
    ['INSERT INTO t VALUES (sqlite_version())', /^sqlite_version\(\) cannot be replicated: .*builds/],
    ['INSERT INTO t VALUES (sqlite_source_id())', /^sqlite_source_id\(\) cannot be replicated/],
    ["SELECT load_extension('x')", /^load_extension\(\) cannot be replicated/],
    ["ATTACH DATABASE 'other.db' AS o", /^ATTACH cannot be replicated/],
    ['DETACH o', /^DETACH cannot be replicated/],
    ['PRAGMA journal_mode = WAL', /^PRAGMA journal_mode cannot be replicated/],
    ['PRAGMA main.user_version = 2', /^PRAGMA user_version cannot be replicated/],
    ['PRAGMA optimize', /^PRAGMA optimize cannot be replicated/],
    ['CREATE TABLE t (id INTEGER, at TEXT DEFAULT CURRENT_TIMESTAMP)', /^CURRENT_TIMESTAMP in CREATE TABLE cannot be replicated: .*default/],
    ['CREATE TABLE t (id INTEGER, r INTEGER DEFAULT (random()))', /^random\(\) in CREATE TABLE/],
    ['CREATE TRIGGER tr AFTER INSERT ON t BEGIN UPDATE t SET at = datetime(\'now\'); END', /^'now' in datetime\(\) in CREATE TRIGGER.*fires/],
    ['CREATE VIEW v AS SELECT date() AS d', /^date\(\) in CREATE VIEW/],
    ['INSERT INTO t VALUES (1); INSERT INTO t VALUES (changes())', /^changes\(\)/],
  ];
  for (const [sql, message] of cases) {
    it(JSON.stringify(sql), () => {
      assert.match(refusal(sql).message, message);
    });
  }

  it('allows read-only PRAGMAs and CREATE TABLE ... AS SELECT (pinned)', () => {
    assert.equal(pin('PRAGMA table_info(t)'), 'PRAGMA table_info(t)');
    assert.equal(pin('CREATE TABLE t2 AS SELECT random() AS r, CURRENT_DATE AS d', context([5n])), "CREATE TABLE t2 AS SELECT 5 AS r, '2024-02-29' AS d");
    assert.equal(pin('CREATE TABLE t (a DEFAULT 1, b DEFAULT \'now\')'), "CREATE TABLE t (a DEFAULT 1, b DEFAULT 'now')");
  });
});

describe('pinSqliteNondeterminism: replicas converge', () => {
  it('two databases applying the pinned statements hold identical rows', () => {
    const script = `INSERT INTO t(id, at, d, r, b) VALUES (1, CURRENT_TIMESTAMP, datetime('now', '+1 hour'), random(), randomblob(8));
UPDATE t SET r = r + abs(random()) % 10, u = unixepoch() WHERE id = 1`;
    const pinned = pin(script, context([123456789n, -987654321n]));
    const dump = (): unknown[] => {
      const db = new Database(':memory:');
      db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, at, d, r, b, u)');
      db.exec(pinned);
      const rows = db.prepare('SELECT id, at, d, r, hex(b) AS b, u FROM t').safeIntegers().all();
      db.close();
      return rows;
    };
    const a = dump();
    const b = dump();
    assert.deepEqual(a, b);
    assert.deepEqual(a, [
      {
        id: 1n,
        at: '2024-02-29 13:45:06',
        d: '2024-02-29 14:45:06',
        r: 123456789n + 987654321n % 10n,
        b: '0B30557A9FC4E90E',
        u: BigInt(Math.floor(NOW_MS / 1000)),
      },
    ]);
  });
});
