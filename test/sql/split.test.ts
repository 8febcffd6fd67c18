import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { SqlLexError, splitStatements } from '../../src/sql/index.js';

describe('splitStatements', () => {
  it('splits on top-level semicolons and trims', () => {
    assert.deepEqual(splitStatements('SELECT 1;  SELECT 2 ;\nSELECT 3'), ['SELECT 1', 'SELECT 2', 'SELECT 3']);
  });

  it('drops empty statements and comment-only pieces', () => {
    assert.deepEqual(splitStatements(';; SELECT 1;;\n ; -- done\n'), ['SELECT 1']);
    assert.deepEqual(splitStatements(''), []);
    assert.deepEqual(splitStatements('  /* nothing */ ; ;'), []);
  });

  it('keeps the original text of each statement, comments included', () => {
    const sql = "-- first\nINSERT INTO t VALUES ('a;b') /* ; */;\n\tSELECT \"x;y\" FROM [z;]  ;";
    assert.deepEqual(splitStatements(sql), ["-- first\nINSERT INTO t VALUES ('a;b') /* ; */", 'SELECT "x;y" FROM [z;]']);
  });

  it('does not split inside strings, identifiers or comments', () => {
    assert.deepEqual(splitStatements("SELECT ';' AS `a;b`; SELECT 2 -- ;\n"), ["SELECT ';' AS `a;b`", 'SELECT 2 -- ;']);
  });

  it('keeps a SQLite CREATE TRIGGER body with CASE ... END in one statement', () => {
    const trigger = `CREATE TEMP TRIGGER IF NOT EXISTS tr AFTER INSERT ON t
BEGIN
  UPDATE t SET n = CASE WHEN new.v > 0 THEN 1 ELSE 0 END WHERE id = new.id;
  INSERT INTO log VALUES (new.id, 'end;');
END`;
    assert.deepEqual(splitStatements(`${trigger}; INSERT INTO t(id, v) VALUES (1, 5);`), [trigger, 'INSERT INTO t(id, v) VALUES (1, 5)']);
  });

  it('agrees with SQLite when the split statements are executed one by one', () => {
    const script = `CREATE TABLE t(id INTEGER PRIMARY KEY, v, n);
CREATE TABLE log(id, note);
CREATE TRIGGER tr AFTER INSERT ON t BEGIN
  UPDATE t SET n = CASE WHEN new.v > 0 THEN 'pos' ELSE 'neg' END WHERE id = new.id;
  INSERT INTO log VALUES (new.id, 'a;b');
END;
INSERT INTO t(id, v) VALUES (1, 5);
INSERT INTO t(id, v) VALUES (2, -5);`;
    const statements = splitStatements(script);
    assert.equal(statements.length, 5);
    const db = new Database(':memory:');
    for (const s of statements) db.prepare(s).run(); // prepare() accepts exactly one statement
    assert.deepEqual(db.prepare('SELECT id, n FROM t ORDER BY id').all(), [
      { id: 1, n: 'pos' },
      { id: 2, n: 'neg' },
    ]);
    assert.deepEqual(db.prepare('SELECT count(*) AS c FROM log').get(), { c: 2 });
    db.close();
  });

  it('ends an EXPLAIN CREATE TRIGGER the same way', () => {
    assert.equal(splitStatements('EXPLAIN CREATE TRIGGER tr BEFORE DELETE ON t BEGIN SELECT 1; END; SELECT 2').length, 2);
  });

  it('a column named trigger or end does not confuse the splitter', () => {
    assert.deepEqual(splitStatements('SELECT "trigger", end FROM t; SELECT 1'), ['SELECT "trigger", end FROM t', 'SELECT 1']);
    assert.deepEqual(splitStatements('CREATE TABLE tr(x); END; SELECT 1'), ['CREATE TABLE tr(x)', 'END', 'SELECT 1']);
  });

  it('MySQL: a stored procedure body with nested blocks stays in one statement', () => {
    const proc = `CREATE DEFINER=\`root\`@\`%\` PROCEDURE p(IN n INT)
BEGIN
  DECLARE i INT DEFAULT 0;
  lbl: WHILE i < n DO
    IF i % 2 = 0 THEN INSERT INTO t VALUES (i); END IF;
    CASE i WHEN 3 THEN SELECT 3; ELSE BEGIN SELECT CASE WHEN i > 1 THEN 1 END; END; END CASE;
    SET i = i + 1;
  END WHILE lbl;
END`;
    assert.deepEqual(splitStatements(`${proc}; CALL p(3)`, { dialect: 'mysql' }), [proc, 'CALL p(3)']);
  });

  it('MySQL: a trigger without BEGIN ends at its semicolon; CREATE TABLE event(...) is plain', () => {
    assert.deepEqual(
      splitStatements('CREATE TRIGGER t1 BEFORE INSERT ON t FOR EACH ROW SET NEW.a = 1; SELECT 1', { dialect: 'mysql' }),
      ['CREATE TRIGGER t1 BEFORE INSERT ON t FOR EACH ROW SET NEW.a = 1', 'SELECT 1'],
    );
    assert.deepEqual(splitStatements('CREATE TABLE event (begin INT); SELECT 1', { dialect: 'mysql' }), [
      'CREATE TABLE event (begin INT)',
      'SELECT 1',
    ]);
  });

  it('MySQL: BEGIN alone is a transaction start, BEGIN NOT ATOMIC a compound block', () => {
    assert.deepEqual(splitStatements('BEGIN; SELECT 1; COMMIT', { dialect: 'mysql' }), ['BEGIN', 'SELECT 1', 'COMMIT']);
    assert.deepEqual(splitStatements('BEGIN NOT ATOMIC SELECT 1; SELECT 2; END; SELECT 3', { dialect: 'mysql' }), [
      'BEGIN NOT ATOMIC SELECT 1; SELECT 2; END',
      'SELECT 3',
    ]);
  });

  it('MySQL: splits around executable comments and refuses a semicolon inside one', () => {
    assert.deepEqual(splitStatements('/*!40101 SET NAMES utf8 */; SELECT 1', { dialect: 'mysql' }), [
      '/*!40101 SET NAMES utf8 */',
      'SELECT 1',
    ]);
    assert.throws(() => splitStatements('/*! SET a=1; SET b=2 */', { dialect: 'mysql' }), SqlLexError);
  });

  it('MySQL: a backslash-escaped quote does not end the string', () => {
    assert.deepEqual(splitStatements("SELECT 'x\\'; DELETE FROM t; --'", { dialect: 'mysql' }), ["SELECT 'x\\'; DELETE FROM t; --'"]);
    // In SQLite the same text is two statements and a comment.
    assert.deepEqual(splitStatements("SELECT 'x\\'; DELETE FROM t; --'"), ["SELECT 'x\\'", 'DELETE FROM t']);
  });

  it('propagates lex errors', () => {
    assert.throws(() => splitStatements("SELECT 1; SELECT 'oops"), SqlLexError);
  });
});
