import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode, ReplisqlError } from '../../src/errors.js';
import { SqlLexError, tokenize, type LexOptions } from '../../src/sql/index.js';

const MYSQL: LexOptions = { dialect: 'mysql' };

/** "kind:text" for each token. */
function lex(sql: string, options: LexOptions = {}): string[] {
  return tokenize(sql, options).map((t) => `${t.kind}:${t.text}`);
}

function lexError(sql: string, options: LexOptions = {}): SqlLexError {
  try {
    tokenize(sql, options);
  } catch (e) {
    assert.ok(e instanceof SqlLexError, `expected SqlLexError, got ${String(e)}`);
    return e;
  }
  assert.fail(`expected a lex error for ${JSON.stringify(sql)}`);
}

describe('tokenize: basics', () => {
  it('splits words, punctuation and operators and keeps offsets', () => {
    const sql = 'SELECT a, b+1 FROM t WHERE x<>2;';
    const tokens = tokenize(sql);
    assert.deepEqual(
      tokens.map((t) => `${t.kind}:${t.text}`),
      ['word:SELECT', 'word:a', 'comma:,', 'word:b', 'op:+', 'number:1', 'word:FROM', 'word:t', 'word:WHERE', 'word:x', 'op:<>', 'number:2', 'semicolon:;'],
    );
    for (const t of tokens) assert.equal(sql.slice(t.start, t.end), t.text);
  });

  it('reads multi-character operators greedily', () => {
    assert.deepEqual(lex('a<=b>=c!=d==e||f<<g>>h'), [
      'word:a', 'op:<=', 'word:b', 'op:>=', 'word:c', 'op:!=', 'word:d', 'op:==', 'word:e', 'op:||', 'word:f', 'op:<<', 'word:g', 'op:>>', 'word:h',
    ]);
    assert.deepEqual(lex('a<=>b', MYSQL), ['word:a', 'op:<=>', 'word:b']);
    assert.deepEqual(lex("j->>'$.a'", MYSQL), ['word:j', 'op:->>', "string:'$.a'"]);
    assert.deepEqual(lex('@a := 1', MYSQL), ['param:@a', 'op::=', 'number:1']);
  });

  it('reads numbers, hex and blob literals', () => {
    assert.deepEqual(lex('1 1.5 .5 1e10 2.5E-3 0x1F 1.'), [
      'number:1', 'number:1.5', 'number:.5', 'number:1e10', 'number:2.5E-3', 'number:0x1F', 'number:1.',
    ]);
    assert.deepEqual(lex("X'00ff' x'AB'"), ["blob:X'00ff'", "blob:x'AB'"]);
    assert.deepEqual(lex("0b101 b'01' B'1'", MYSQL), ['number:0b101', "blob:b'01'", "blob:B'1'"]);
    assert.deepEqual(lex('1_000'), ['number:1_000']);
  });

  it('keeps identifier characters glued to a number in the same token', () => {
    assert.deepEqual(lex('1random()'), ['number:1random', 'lparen:(', 'rparen:)']);
  });

  it('reads bare identifiers with $ and non-ASCII letters', () => {
    assert.deepEqual(lex('a$b café _x'), ['word:a$b', 'word:café', 'word:_x']);
  });

  it('reads parameters', () => {
    assert.deepEqual(lex('? ?12 :name @v $w :1'), ['param:?', 'param:?12', 'param::name', 'param:@v', 'param:$w', 'param::1']);
    assert.deepEqual(lex('@@session.sql_mode @`x y` $col', MYSQL), [
      'param:@@session', 'op:.', 'word:sql_mode', 'param:@`x y`', 'word:$col',
    ]);
  });
});

describe('tokenize: strings and quoted identifiers', () => {
  it("doubles quotes to escape them", () => {
    assert.deepEqual(lex("'it''s' \"a\"\"b\" `c``d`"), ["string:'it''s'", 'quoted:"a""b"', 'quoted:`c``d`']);
  });

  it('reads [bracket] identifiers in SQLite only', () => {
    assert.deepEqual(lex('[my col]'), ['quoted:[my col]']);
    assert.deepEqual(lex('a[1]', MYSQL), ['word:a', 'op:[', 'number:1', 'op:]']);
  });

  it('treats backslash as an ordinary character in SQLite strings', () => {
    // In SQLite 'C:\' is a complete string; the rest is code.
    assert.deepEqual(lex("'C:\\'; DELETE"), ["string:'C:\\'", 'semicolon:;', 'word:DELETE']);
  });

  it('honours MySQL backslash escapes unless NO_BACKSLASH_ESCAPES', () => {
    assert.deepEqual(lex("'a\\'; DELETE' x", MYSQL), ["string:'a\\'; DELETE'", 'word:x']);
    assert.deepEqual(lex("'a\\\\' x", MYSQL), ["string:'a\\\\'", 'word:x']);
    assert.deepEqual(lex("'a\\'; x", { dialect: 'mysql', noBackslashEscapes: true }), ["string:'a\\'", 'semicolon:;', 'word:x']);
  });

  it('reads "x" as a string in MySQL and as an identifier with ANSI_QUOTES', () => {
    assert.deepEqual(lex('"a\\"b"', MYSQL), ['string:"a\\"b"']);
    assert.deepEqual(lex('"a"', { dialect: 'mysql', ansiQuotes: true }), ['quoted:"a"']);
    assert.deepEqual(lex('"a"'), ['quoted:"a"']);
  });

  it('does not see comments or semicolons inside strings and identifiers', () => {
    assert.deepEqual(lex("'--x;/*' \"#;\" `/*`"), ["string:'--x;/*'", 'quoted:"#;"', 'quoted:`/*`']);
  });
});

describe('tokenize: comments', () => {
  it('skips -- line comments and /* */ block comments', () => {
    assert.deepEqual(lex('a -- c ; d\nb /* x ; */ c'), ['word:a', 'word:b', 'word:c']);
    assert.deepEqual(lex('a --'), ['word:a']);
    assert.deepEqual(lex('a/**/b'), ['word:a', 'word:b']);
  });

  it('SQLite: "--" starts a comment even without a following space', () => {
    assert.deepEqual(lex('SELECT 1--1\n'), ['word:SELECT', 'number:1']);
  });

  it('MySQL: "--" needs whitespace after it, otherwise it is two minus signs', () => {
    assert.deepEqual(lex('SELECT 1--1', MYSQL), ['word:SELECT', 'number:1', 'op:-', 'op:-', 'number:1']);
    assert.deepEqual(lex('SELECT 1 -- c', MYSQL), ['word:SELECT', 'number:1']);
    assert.deepEqual(lex('SELECT 1 --\tc', MYSQL), ['word:SELECT', 'number:1']);
    assert.deepEqual(lex('SELECT 1 --', MYSQL), ['word:SELECT', 'number:1']);
  });

  it('MySQL: # starts a line comment; SQLite: # is an operator character', () => {
    assert.deepEqual(lex('a # b ; c\nd', MYSQL), ['word:a', 'word:d']);
    assert.deepEqual(lex('a # b'), ['word:a', 'op:#', 'word:b']);
  });

  it('MySQL: the content of /*! ... */ and /*M! ... */ is code, with the version skipped', () => {
    const tokens = tokenize('SELECT /*!50110 SQL_NO_CACHE */ a /*M!100100 , b */ /*+ hint */ FROM t', MYSQL);
    assert.deepEqual(
      tokens.map((t) => `${t.kind}:${t.text}:${t.inExecComment}`),
      ['word:SELECT:false', 'word:SQL_NO_CACHE:true', 'word:a:false', 'comma:,:true', 'word:b:true', 'word:FROM:false', 'word:t:false'],
    );
    assert.deepEqual(lex('/*!CREATE*/ TABLE', MYSQL), ['word:CREATE', 'word:TABLE']);
  });

  it('SQLite: /*! ... */ is an ordinary comment', () => {
    assert.deepEqual(lex('a /*! b */ c'), ['word:a', 'word:c']);
  });
});

describe('tokenize: errors', () => {
  it('reports an unterminated string with its position', () => {
    const e = lexError("SELECT 1,\n  'abc");
    assert.equal(e.position, 12);
    assert.equal(e.line, 2);
    assert.equal(e.column, 3);
    assert.equal(e.code, ErrorCode.BAD_REQUEST);
    assert.ok(e instanceof ReplisqlError);
    assert.match(e.message, /unterminated string literal at line 2, column 3/);
  });

  it('reports unterminated identifiers and comments', () => {
    assert.match(lexError('SELECT "abc').message, /unterminated quoted identifier/);
    assert.match(lexError('SELECT `abc').message, /unterminated quoted identifier/);
    assert.match(lexError('SELECT [abc').message, /unterminated \[identifier\]/);
    assert.equal(lexError('SELECT 1 /* x').position, 9);
    assert.match(lexError('SELECT /*! 1', MYSQL).message, /unterminated executable comment/);
    assert.match(lexError("SELECT X'ab").message, /unterminated blob literal/);
  });

  it('an escaped quote at the end does not terminate a MySQL string', () => {
    assert.match(lexError("SELECT 'abc\\'", MYSQL).message, /unterminated string literal/);
    assert.deepEqual(lex("SELECT 'abc\\'"), ['word:SELECT', "string:'abc\\'"]);
  });

  it('accepts an empty input and whitespace only', () => {
    assert.deepEqual(tokenize(''), []);
    assert.deepEqual(tokenize(' \n\t -- c'), []);
  });
});
