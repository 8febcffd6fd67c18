// SQL lexer package: tokenizing, statement splitting and classification, and the
// non-determinism handling used before a statement is replicated. See docs/design-sql.md.
export { SqlLexError } from './lex-error.js';
export { tokenize, DIALECTS, TOKEN_KINDS, type Dialect, type LexOptions, type Token, type TokenKind } from './tokenizer.js';
export { splitStatements, statementRanges, type StatementRange } from './split.js';
export {
  classifyStatement,
  classifyScript,
  classifyTokens,
  READ_ONLY_PRAGMAS,
  STATEMENT_KINDS,
  type ClassifiedScript,
  type ClassifiedStatement,
  type StatementClass,
  type StatementKind,
} from './classify.js';
export { pinSqliteNondeterminism, MAX_PINNED_RANDOMBLOB_BYTES, type PinContext } from './sqlite-pin.js';
export {
  findMysqlNondeterminism,
  type MysqlLexOptions,
  type MysqlNondeterminism,
  type UnsafeConstruct,
} from './mysql-nondeterminism.js';
