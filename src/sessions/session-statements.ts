// Statements a client session answers itself instead of sending to a database: transaction
// control, SET, USE, and (on SQLite, which has no system variables) `SELECT @@var`. Pure functions
// over the lexer's tokens; src/shell/sql-session.ts acts on what they return.
import { tokenize, type Dialect, type Token } from '../sql/index.js';
import { parseMaxStaleness, readConsistencyOf, unknownReadConsistency, type ReadConsistency } from './read-levels.js';
import { ACK_LEVELS, type AckLevel } from '../core/types.js';

/** `SET SESSION replisql_read_consistency = 'linearizable'`: the session's read level (docs/consistency.md). */
export const READ_CONSISTENCY_VARIABLE = 'replisql_read_consistency';
/** `SET SESSION replisql_read_max_staleness_ms = 500`: the bound of the `bounded` level. */
export const MAX_STALENESS_VARIABLE = 'replisql_read_max_staleness_ms';
/** `SET SESSION replisql_write_ack = 'all-applied'`: when the session's writes are acknowledged. */
export const WRITE_ACK_VARIABLE = 'replisql_write_ack';

export type TransactionCommand =
  | { readonly type: 'begin' }
  | { readonly type: 'commit' }
  | { readonly type: 'rollback' }
  /** Accepted without effect (SET TRANSACTION ISOLATION LEVEL ...). */
  | { readonly type: 'accept' }
  | { readonly type: 'refuse'; readonly message: string };

export type SessionCommand =
  /** SET: the values it changes (null: left as it is); anything else it names is accepted without effect. */
  | {
      readonly type: 'set';
      readonly autocommit: boolean | null;
      readonly readConsistency: ReadConsistency | null;
      readonly maxStalenessMs: number | null;
      readonly writeAck: AckLevel | null;
    }
  | { readonly type: 'use'; readonly database: string }
  | { readonly type: 'refuse'; readonly message: string }
  /** Not a statement of either dialect: the client gets a syntax error, as from the database. */
  | { readonly type: 'syntax-error'; readonly message: string };

/**
 * Real statements of MySQL or SQLite that a session does not run (they act on the connection or the
 * server, which would differ between replicas). Any other unknown first word is a syntax error.
 */
const KNOWN_SESSION_VERBS: ReadonlySet<string> = new Set([
  'LOCK', 'UNLOCK', 'FLUSH', 'KILL', 'RESET', 'PURGE', 'INSTALL', 'UNINSTALL', 'HANDLER', 'DO', 'PREPARE', 'EXECUTE',
  'DEALLOCATE', 'SIGNAL', 'RESIGNAL', 'GET', 'DECLARE', 'SHUTDOWN', 'CACHE', 'BINLOG', 'CHANGE', 'STOP', 'START', 'ATTACH',
  'DETACH', 'PRAGMA', 'BACKUP', 'RESTORE', 'CLONE', 'IMPORT', 'XA',
]);

/** Session variables a SET may change without effect: replisql always speaks utf8mb4, and its transactions are serialized. */
const ACCEPTED_VARIABLES: ReadonlySet<string> = new Set([
  'character_set_client',
  'character_set_results',
  'character_set_connection',
  'collation_connection',
  'transaction_isolation',
  'tx_isolation',
  'names',
]);

function words(sql: string, dialect: Dialect): Token[] {
  return tokenize(sql, { dialect }).filter((t) => t.kind !== 'semicolon');
}

function upper(t: Token | undefined): string {
  return t === undefined ? '' : t.text.toUpperCase();
}

/** BEGIN / START TRANSACTION / COMMIT / END / ROLLBACK / SAVEPOINT / XA / SET TRANSACTION. */
export function parseTransactionStatement(sql: string, dialect: Dialect): TransactionCommand {
  const t = words(sql, dialect);
  const verb = upper(t[0]);
  const rest = t.slice(1).map(upper);
  switch (verb) {
    case 'BEGIN':
      // SQLite: BEGIN [DEFERRED|IMMEDIATE|EXCLUSIVE] [TRANSACTION]; MySQL: BEGIN [WORK].
      return { type: 'begin' };
    case 'START':
      if (rest.includes('READ') && rest.includes('ONLY')) return { type: 'begin' };
      return { type: 'begin' };
    case 'COMMIT':
    case 'END':
      if (rest.includes('CHAIN') && !rest.includes('NO')) return { type: 'refuse', message: 'COMMIT AND CHAIN is not supported; send COMMIT, then BEGIN' };
      if (rest.includes('RELEASE') && !rest.includes('NO')) return { type: 'refuse', message: 'COMMIT RELEASE is not supported; send COMMIT and close the connection' };
      return { type: 'commit' };
    case 'ROLLBACK':
      if (rest.includes('TO')) return { type: 'refuse', message: 'savepoints (ROLLBACK TO SAVEPOINT) are not supported inside replicated transactions' };
      if (rest.includes('CHAIN') && !rest.includes('NO')) return { type: 'refuse', message: 'ROLLBACK AND CHAIN is not supported; send ROLLBACK, then BEGIN' };
      return { type: 'rollback' };
    case 'SAVEPOINT':
    case 'RELEASE':
      return { type: 'refuse', message: `${verb} is not supported inside replicated transactions (savepoints are not replicated)` };
    case 'XA':
      return { type: 'refuse', message: 'XA transactions are not supported' };
    case 'SET':
      // SET [SESSION] TRANSACTION ISOLATION LEVEL ... / READ WRITE: transactions run one at a time on
      // the coordinator, which is at least as strict as any level.
      if (rest[0] === 'GLOBAL') return { type: 'refuse', message: 'SET GLOBAL is not supported: configure the database of every node instead' };
      if (rest.includes('READ') && rest.includes('ONLY')) return { type: 'refuse', message: 'SET TRANSACTION READ ONLY is not supported' };
      return { type: 'accept' };
    default:
      return { type: 'refuse', message: `${verb || 'this statement'} is not a supported transaction statement` };
  }
}

/** SET ... and USE db. */
export function parseSessionStatement(sql: string, dialect: Dialect): SessionCommand {
  const t = words(sql, dialect);
  const verb = upper(t[0]);
  if (verb === 'USE') {
    const db = t[1];
    if (db === undefined || t.length !== 2) return { type: 'refuse', message: 'USE needs exactly one database name' };
    return { type: 'use', database: unquote(db) };
  }
  if (verb !== 'SET' && !KNOWN_SESSION_VERBS.has(verb)) {
    const near = sql.trim().slice(0, 40);
    return { type: 'syntax-error', message: `You have an error in your SQL syntax near '${near}': ${verb ? `'${verb}' does not start a statement` : 'no statement keyword'}` };
  }
  if (verb !== 'SET') {
    return {
      type: 'refuse',
      message: `${verb || 'this statement'} is not supported: it changes per-connection or server state that would differ between replicas`,
    };
  }
  let autocommit: boolean | null = null;
  let readConsistency: ReadConsistency | null = null;
  let maxStalenessMs: number | null = null;
  let writeAck: AckLevel | null = null;
  for (const assignment of splitTopLevel(t.slice(1))) {
    const r = parseAssignment(assignment);
    if (typeof r === 'string') return { type: 'refuse', message: r };
    if (r.name === 'autocommit') autocommit = r.value as boolean;
    if (r.name === READ_CONSISTENCY_VARIABLE) readConsistency = r.value as ReadConsistency;
    if (r.name === MAX_STALENESS_VARIABLE) maxStalenessMs = r.value as number;
    if (r.name === WRITE_ACK_VARIABLE) writeAck = r.value as AckLevel;
  }
  return { type: 'set', autocommit, readConsistency, maxStalenessMs, writeAck };
}

function splitTopLevel(tokens: readonly Token[]): Token[][] {
  const out: Token[][] = [[]];
  let depth = 0;
  for (const tok of tokens) {
    if (tok.kind === 'lparen') depth++;
    if (tok.kind === 'rparen') depth--;
    if (tok.kind === 'comma' && depth === 0) out.push([]);
    else out[out.length - 1]!.push(tok);
  }
  return out;
}

/** One `[SESSION|LOCAL] var = value` or `@@[session.]var = value` or `NAMES x` / `CHARACTER SET x`. */
function parseAssignment(tokens: readonly Token[]): { name: string; value: boolean | string | number | null } | string {
  let i = 0;
  let first = upper(tokens[0]);
  if (first === 'GLOBAL' || first === 'PERSIST' || first === 'PERSIST_ONLY') return `SET ${first} is not supported: configure the database of every node instead`;
  if (first === 'SESSION' || first === 'LOCAL') {
    i = 1;
    first = upper(tokens[1]);
  }
  if (first === 'NAMES' || (first === 'CHARACTER' && upper(tokens[i + 1]) === 'SET') || first === 'CHARSET') return { name: 'names', value: null };
  const nameTok = tokens[i];
  if (nameTok === undefined) return 'SET needs a variable';
  let name: string;
  if (nameTok.kind === 'param' && nameTok.text.startsWith('@@')) {
    const text = nameTok.text.slice(2).toLowerCase();
    if (text.startsWith('global.')) return 'SET @@global... is not supported: configure the database of every node instead';
    name = text.replace(/^(session|local)\./, '');
    // The lexer may stop at the dot: @@session . var
    if ((name === 'session' || name === 'local') && tokens[i + 1]?.text === '.') {
      name = upper(tokens[i + 2]).toLowerCase();
      i += 2;
    }
  } else if (nameTok.kind === 'param') {
    return `user variables (${nameTok.text}) are not supported: their values would differ between replicas`;
  } else if (nameTok.kind === 'word') {
    name = nameTok.text.toLowerCase();
  } else {
    return `cannot parse the SET assignment near ${JSON.stringify(nameTok.text)}`;
  }
  const op = tokens[i + 1];
  if (op === undefined || (op.text !== '=' && op.text !== ':=')) return `SET ${name} needs "= value"`;
  const valueTokens = tokens.slice(i + 2);
  if (name === 'autocommit') {
    const v = valueTokens.length === 1 ? upper(valueTokens[0]).replace(/^'|'$/g, '') : '';
    if (v === '1' || v === 'ON' || v === 'TRUE') return { name, value: true };
    if (v === '0' || v === 'OFF' || v === 'FALSE') return { name, value: false };
    return `SET autocommit takes 0, 1, ON or OFF`;
  }
  if (name === WRITE_ACK_VARIABLE) {
    const raw = (valueTokens.length === 1 ? unquote(valueTokens[0]!) : valueTokens.map((v) => v.text).join('')).toLowerCase();
    return (ACK_LEVELS as readonly string[]).includes(raw) ? { name, value: raw } : `unknown ack level ${JSON.stringify(raw).slice(0, 60)} in ${name}: expected one of ${ACK_LEVELS.join(', ')}`;
  }
  if (name === READ_CONSISTENCY_VARIABLE || name === MAX_STALENESS_VARIABLE) {
    const raw = valueTokens.length === 1 ? unquote(valueTokens[0]!) : valueTokens.map((v) => v.text).join(' ');
    if (name === MAX_STALENESS_VARIABLE) {
      const ms = parseMaxStaleness(raw, name);
      return typeof ms === 'string' ? ms : { name, value: ms };
    }
    const level = readConsistencyOf(raw);
    return level === null ? unknownReadConsistency(raw, name) : { name, value: level };
  }
  if (ACCEPTED_VARIABLES.has(name)) return { name, value: null };
  return `SET ${name} is not supported: session variables would differ between replicas (configure it on every node's database instead)`;
}

function unquote(t: Token): string {
  if (t.kind === 'quoted' || t.kind === 'string') return t.text.slice(1, -1).replace(/``/g, '`').replace(/""/g, '"');
  return t.text;
}

/** One item of a `SELECT @@var, DATABASE() ...` the session answers itself. */
export interface SystemSelectItem {
  /** The column label: the item's text, or its alias. */
  readonly label: string;
  /** Lower-case variable name without @@ and scope, or a function name ('database()', 'version()', ...). */
  readonly name: string;
}

const SYSTEM_FUNCTIONS = new Set(['DATABASE', 'SCHEMA', 'VERSION', 'CONNECTION_ID', 'USER', 'CURRENT_USER', 'SESSION_USER', 'SYSTEM_USER']);

/**
 * `SELECT @@version_comment LIMIT 1`, `SELECT DATABASE(), @@autocommit`: a SELECT of only system
 * variables and session functions, with an optional alias per item and an optional LIMIT. null for
 * anything else.
 */
export function parseSystemSelect(sql: string): SystemSelectItem[] | null {
  let t: Token[];
  try {
    // MySQL's lexical rules on every engine: `@@name` is MySQL syntax.
    t = words(sql, 'mysql');
  } catch {
    return null;
  }
  if (upper(t[0]) !== 'SELECT' || t.length < 2) return null;
  let end = t.length;
  if (end >= 3 && upper(t[end - 2]) === 'LIMIT' && t[end - 1]!.kind === 'number') end -= 2;
  const items: SystemSelectItem[] = [];
  for (const part of splitTopLevel(t.slice(1, end))) {
    let k = 0;
    let name: string;
    const tok = part[0];
    if (tok === undefined) return null;
    if (tok.kind === 'param' && tok.text.startsWith('@@')) {
      name = tok.text.slice(2).toLowerCase().replace(/^(session|local|global)\./, '');
      k = 1;
      // The lexer stops at the dot of @@session.name.
      if (/^(session|local|global)$/.test(name) && part[1]?.text === '.' && part[2]?.kind === 'word') {
        name = part[2].text.toLowerCase();
        k = 3;
      }
    } else if (tok.kind === 'word' && SYSTEM_FUNCTIONS.has(upper(tok)) && part[1]?.kind === 'lparen' && part[2]?.kind === 'rparen') {
      name = `${tok.text.toLowerCase()}()`;
      k = 3;
    } else return null;
    const itemText = sql.slice(tok.start, part[k - 1]!.end);
    let label = itemText;
    if (upper(part[k]) === 'AS' && part[k + 1] !== undefined && k + 2 === part.length) label = unquote(part[k + 1]!);
    else if (part[k] !== undefined && k + 1 === part.length && (part[k]!.kind === 'word' || part[k]!.kind === 'quoted')) label = unquote(part[k]!);
    else if (k !== part.length) return null;
    items.push({ label, name });
  }
  return items.length > 0 ? items : null;
}
