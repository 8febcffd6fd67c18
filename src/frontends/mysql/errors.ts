// Maps a session's error to the (errno, SQLSTATE, message) of an ERR packet. Database errors keep
// their own numbers and messages; replisql's cluster errors get the numbers drivers already know how
// to handle (Galera's 1047 08S01 for a node that cannot serve, 1213 40001 for "retry the transaction").
// mysql2's full error table (mysql2/lib/constants/errors.js) is not importable (the package's
// "exports" hides it), so the common MySQL error names are listed here.
import { ErrorCode, type ClusterErrorCode, type ErrorInfo } from '../../errors.js';
import type { ErrPacket } from './results.js';

/** MySQL error names -> [errno, SQLSTATE]. */
export const MYSQL_ERRORS: Readonly<Record<string, readonly [number, string]>> = {
  ER_DUP_ENTRY: [1062, '23000'],
  ER_DUP_KEY: [1022, '23000'],
  ER_BAD_NULL_ERROR: [1048, '23000'],
  ER_NO_REFERENCED_ROW: [1216, '23000'],
  ER_ROW_IS_REFERENCED: [1217, '23000'],
  ER_NO_REFERENCED_ROW_2: [1452, '23000'],
  ER_ROW_IS_REFERENCED_2: [1451, '23000'],
  ER_CONSTRAINT_FAILED: [4025, '23000'],
  ER_CHECK_CONSTRAINT_VIOLATED: [3819, 'HY000'],
  ER_NO_SUCH_TABLE: [1146, '42S02'],
  ER_BAD_TABLE_ERROR: [1051, '42S02'],
  ER_TABLE_EXISTS_ERROR: [1050, '42S01'],
  ER_BAD_FIELD_ERROR: [1054, '42S22'],
  ER_DUP_FIELDNAME: [1060, '42S21'],
  ER_PARSE_ERROR: [1064, '42000'],
  ER_SYNTAX_ERROR: [1149, '42000'],
  ER_EMPTY_QUERY: [1065, '42000'],
  ER_BAD_DB_ERROR: [1049, '42000'],
  ER_DB_CREATE_EXISTS: [1007, 'HY000'],
  ER_NO_DB_ERROR: [1046, '3D000'],
  ER_ACCESS_DENIED_ERROR: [1045, '28000'],
  ER_DBACCESS_DENIED_ERROR: [1044, '42000'],
  ER_TABLEACCESS_DENIED_ERROR: [1142, '42000'],
  ER_COLUMNACCESS_DENIED_ERROR: [1143, '42000'],
  ER_SPECIFIC_ACCESS_DENIED_ERROR: [1227, '42000'],
  ER_LOCK_DEADLOCK: [1213, '40001'],
  ER_LOCK_WAIT_TIMEOUT: [1205, 'HY000'],
  ER_DATA_TOO_LONG: [1406, '22001'],
  ER_WARN_DATA_OUT_OF_RANGE: [1264, '22003'],
  ER_TRUNCATED_WRONG_VALUE: [1292, '22007'],
  ER_TRUNCATED_WRONG_VALUE_FOR_FIELD: [1366, 'HY000'],
  ER_DIVISION_BY_ZERO: [1365, '22012'],
  ER_WRONG_VALUE_COUNT_ON_ROW: [1136, '21S01'],
  ER_WRONG_VALUE_COUNT: [1058, '21S01'],
  ER_NON_UNIQ_ERROR: [1052, '23000'],
  ER_SP_DOES_NOT_EXIST: [1305, '42000'],
  ER_NOT_SUPPORTED_YET: [1235, '42000'],
  ER_UNKNOWN_ERROR: [1105, 'HY000'],
  ER_UNKNOWN_COM_ERROR: [1047, '08S01'],
  ER_ERROR_DURING_COMMIT: [1180, 'HY000'],
  ER_QUERY_INTERRUPTED: [1317, '70100'],
  ER_CANT_LOCK: [1015, 'HY000'],
  ER_OPTION_PREVENTS_STATEMENT: [1290, 'HY000'],
  ER_WRONG_ARGUMENTS: [1210, 'HY000'],
  ER_UNKNOWN_SYSTEM_VARIABLE: [1193, 'HY000'],
  ER_UNKNOWN_TABLE: [1109, '42S02'],
  ER_CANT_DROP_FIELD_OR_KEY: [1091, '42000'],
  ER_TOO_BIG_ROWSIZE: [1118, '42000'],
  ER_NET_PACKET_TOO_LARGE: [1153, '08S01'],
  ER_CON_COUNT_ERROR: [1040, '08004'],
  ER_MAX_PREPARED_STMT_COUNT_REACHED: [1461, '42000'],
};

/** replisql's cluster error codes -> [errno, SQLSTATE] (BAD_REQUEST is mapped by what it is about). */
const CLUSTER_ERRORS: Readonly<Record<Exclude<ClusterErrorCode, 'BAD_REQUEST'>, readonly [number, string]>> = {
  NO_QUORUM: [1047, '08S01'],
  NO_COORDINATOR: [1047, '08S01'],
  UNHEALTHY: [1047, '08S01'],
  NOT_COORDINATOR: [1047, '08S01'],
  OVERLOADED: [1047, '08S01'],
  TRANSACTION_ABORTED: [1213, '40001'],
  UNKNOWN_OUTCOME: [1180, 'HY000'],
  UNSAFE_STATEMENT: [1235, '42000'],
  CHECKSUM_MISMATCH: [1105, 'HY000'],
  INTERNAL: [1105, 'HY000'],
  INVALID_CONFIG: [1105, 'HY000'],
};

function sqliteError(code: string, message: string): readonly [number, string] | null {
  if (!code.startsWith('SQLITE_')) return null;
  switch (code) {
    case 'SQLITE_CONSTRAINT_UNIQUE':
    case 'SQLITE_CONSTRAINT_PRIMARYKEY':
      return [1062, '23000'];
    case 'SQLITE_CONSTRAINT_NOTNULL':
      return [1048, '23000'];
    case 'SQLITE_CONSTRAINT_FOREIGNKEY':
      return [1452, '23000'];
    case 'SQLITE_CONSTRAINT_CHECK':
      return [4025, '23000'];
  }
  if (/no such table/i.test(message)) return [1146, '42S02'];
  if (/no such column/i.test(message)) return [1054, '42S22'];
  if (/syntax error|incomplete input|unrecognized token/i.test(message)) return [1064, '42000'];
  if (/table \S+ already exists/i.test(message)) return [1050, '42S01'];
  if (/too big|string or blob too big/i.test(message)) return [1406, '22001'];
  return [1105, 'HY000'];
}

/** The ERR packet for an error: SQL errors keep the database's numbers; cluster errors get the table above. */
export function errPacketOf(e: ErrorInfo): ErrPacket {
  if (e.code === ErrorCode.SQL_ERROR) {
    const { engineCode, errno, sqlState } = e.sql;
    const mapped = MYSQL_ERRORS[engineCode] ?? sqliteError(engineCode, e.message) ?? (/unknown database/i.test(e.message) ? ([1049, '42000'] as const) : null);
    return { errno: errno ?? mapped?.[0] ?? 1105, sqlState: sqlState ?? mapped?.[1] ?? 'HY000', message: e.message };
  }
  if (e.code === ErrorCode.BAD_REQUEST) {
    const aboutSql = /sql|syntax|statement|token|parse/i.test(e.message);
    return aboutSql
      ? { errno: 1064, sqlState: '42000', message: `replisql BAD_REQUEST: ${e.message}` }
      : { errno: 1105, sqlState: 'HY000', message: `replisql BAD_REQUEST: ${e.message}` };
  }
  const [errno, sqlState] = CLUSTER_ERRORS[e.code];
  return { errno, sqlState, message: `replisql ${e.code}: ${e.message}` };
}
