import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import Database from 'better-sqlite3';
import { UnsafeStatementError } from '../../src/errors.js';
import {
  classifyScript,
  pinSqliteNondeterminism,
  splitStatements,
  SqlLexError,
  tokenize,
  type Dialect,
  type PinContext,
} from '../../src/sql/index.js';

const DIALECT_LIST: readonly Dialect[] = ['sqlite', 'mysql'];

/** Characters that matter to the lexer, so random strings hit the interesting paths often. */
const SQLISH = fc.string({
  unit: fc.constantFrom(...`'"\`[]-/*#;!()?:@$.,xXbB0159eE+ \n\t\\aMN=<>|&_é`.split(''), '/*!', '*/', '--', "''", 'END', 'CREATE TRIGGER', 'BEGIN'),
  maxLength: 60,
});
const ANY_TEXT = fc.oneof(SQLISH, fc.string({ unit: 'binary', maxLength: 60 }), fc.string({ maxLength: 60 }));

function onlyLexErrors(run: () => unknown): void {
  try {
    run();
  } catch (e) {
    if (!(e instanceof SqlLexError)) throw e;
    assert.ok(Number.isInteger(e.position) && e.position >= 0);
  }
}

describe('properties', () => {
  it('tokenize throws nothing but SqlLexError and returns ordered, exact tokens', () => {
    fc.assert(
      fc.property(ANY_TEXT, fc.constantFrom(...DIALECT_LIST), (sql, dialect) => {
        onlyLexErrors(() => {
          const tokens = tokenize(sql, { dialect });
          let at = 0;
          for (const t of tokens) {
            assert.ok(t.start >= at && t.end > t.start && t.end <= sql.length);
            assert.equal(t.text, sql.slice(t.start, t.end));
            at = t.end;
          }
        });
        onlyLexErrors(() => splitStatements(sql, { dialect }));
        onlyLexErrors(() => classifyScript(sql, { dialect }));
      }),
      { numRuns: 3000 },
    );
  });

  it('pinSqliteNondeterminism throws nothing but SqlLexError or UnsafeStatementError', () => {
    const ctx: PinContext = { nowMs: 1_700_000_000_000, random: () => -1n, randomBytes: (n) => new Uint8Array(n) };
    const fragments = fc.constantFrom(
      'random()', 'randomblob(2)', 'randomblob(x)', "datetime('now')", 'date()', "strftime('%s')", 'CURRENT_TIME', "'now'",
      "'utc'", '(', ')', ',', ';', 'ORDER BY', 'LIMIT', 'CREATE TABLE', 'AS', 'INSERT INTO t VALUES', 'x', '.', "'a''b'", '--',
      '/* c */', '\n', 'changes()',
    );
    fc.assert(
      fc.property(fc.array(fragments, { maxLength: 14 }), (parts) => {
        const sql = parts.join(' ');
        try {
          pinSqliteNondeterminism(sql, ctx);
        } catch (e) {
          if (!(e instanceof SqlLexError) && !(e instanceof UnsafeStatementError)) throw e;
        }
      }),
      { numRuns: 3000 },
    );
  });

  // Statements built from fragments that are valid in both dialects; semicolons appear only
  // inside strings, quoted identifiers and block comments.
  const word = fc.constantFrom('SELECT', 'INSERT', 'INTO', 'VALUES', 'x', 't1', 'FROM', 'WHERE', 'CASE', 'END', 'BEGIN', 'CREATE', 'TABLE');
  const fragment = fc.oneof(
    word,
    fc.string({ unit: fc.constantFrom('a', ';', "''", ' ', '-', '*', '/'), maxLength: 8 }).map((s) => `'${s}'`),
    fc.string({ unit: fc.constantFrom('b', ';', '""', ' '), maxLength: 6 }).map((s) => `"${s}"`),
    fc.string({ unit: fc.constantFrom('c', ';', '``', "'"), maxLength: 6 }).map((s) => `\`${s}\``),
    fc.string({ unit: fc.constantFrom('d', ';', "'", '"', '-', ' '), maxLength: 8 }).map((s) => `/*${s}*/`),
    fc.constantFrom('(', ')', ',', '=', '+', '1', '2.5', "X'0A'", '?', ':p', '@v'),
  );
  const statement = fc.tuple(word, fc.array(fragment, { maxLength: 10 })).map(([first, rest]) => [first, ...rest].join(' '));

  it('splitStatements(statements.join(separator)) gives the statements back', () => {
    fc.assert(
      fc.property(
        fc.array(statement, { minLength: 1, maxLength: 6 }),
        fc.constantFrom(';', ';\n', ' ; ', ';;', ';\n-- note\n'),
        fc.constantFrom(...DIALECT_LIST),
        (statements, separator, dialect) => {
          // A comment between statements stays with the statement that follows it.
          const comment = separator.includes('--') ? '-- note\n' : '';
          const expected = statements.map((s, i) => (i === 0 ? s : comment + s));
          assert.deepEqual(splitStatements(statements.join(separator), { dialect }), expected);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('string literals are never rewritten', () => {
    fc.assert(
      fc.property(fc.array(fc.string({ maxLength: 20 }), { minLength: 1, maxLength: 5 }), (values) => {
        const sql = `INSERT INTO t VALUES (${values.map((v) => `'${v.replaceAll("'", "''")}'`).join(', ')})`;
        assert.equal(pinSqliteNondeterminism(sql, { nowMs: 0, random: () => 1n, randomBytes: (n) => new Uint8Array(n) }), sql);
      }),
      { numRuns: 1000 },
    );
  });

  it('pinned statements yield the pinned values in SQLite over the whole date range', () => {
    const db = new Database(':memory:');
    try {
      fc.assert(
        fc.property(
          fc.integer({ min: -62167219200000 /* 0000-01-01 */, max: 253402300799999 /* 9999-12-31 23:59:59.999 */ }),
          fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
          (nowMs, r) => {
            const iso = new Date(nowMs).toISOString();
            const sql = pinSqliteNondeterminism(
              "SELECT CURRENT_TIMESTAMP AS ts, strftime('%Y-%m-%d %H:%M:%f', 'now') AS f, 0-random() AS neg",
              { nowMs, random: () => r, randomBytes: (n) => new Uint8Array(n) },
            );
            const row = db.prepare(sql).safeIntegers().get() as { ts: string; f: string; neg: bigint | number };
            assert.equal(row.ts, `${iso.slice(0, 10)} ${iso.slice(11, 19)}`);
            assert.equal(row.f, `${iso.slice(0, 10)} ${iso.slice(11, 23)}`);
            // 0 - (-2^63) overflows to a REAL in SQLite; every other value stays exact.
            if (r !== -(2n ** 63n)) assert.equal(row.neg, -r);
          },
        ),
        { numRuns: 500 },
      );
    } finally {
      db.close();
    }
  });
});
