// Starts a MysqlServer on 127.0.0.1 (a free port) backed by SqliteTestSession, for the tests.
import { sqlErrorInfo } from '../../../src/errors.js';
import type Database from 'better-sqlite3';
import { MysqlServer, type MysqlServerOptions } from '../../../src/frontends/mysql/server.js';
import { nullLogger } from '../../../src/util/logger-port.js';
import { SqliteTestSession } from './sqlite-test-session.js';

export interface TestServer {
  readonly server: MysqlServer;
  readonly port: number;
  readonly db: Database.Database;
  readonly sessions: SqliteTestSession[];
  close(): Promise<void>;
}

/** `withDescribe`: sessions answer COM_STMT_PREPARE through describe() instead of the LIMIT 0 probe. */
export async function startTestServer(overrides: Partial<MysqlServerOptions> = {}, withDescribe = false): Promise<TestServer> {
  const db = SqliteTestSession.openShared();
  const sessions: SqliteTestSession[] = [];
  const server = new MysqlServer({
    host: '127.0.0.1',
    port: 0,
    users: [
      { user: 'root', password: '' },
      { user: 'app', password: 'sécret-pw' },
    ],
    logger: nullLogger,
    createSession: (info) => {
      if (info.database !== null && info.database !== 'test') {
        return sqlErrorInfo({ engineCode: 'ER_BAD_DB_ERROR' }, `Unknown database '${info.database}'`);
      }
      const s = new SqliteTestSession(db, withDescribe);
      sessions.push(s);
      return s;
    },
    ...overrides,
  });
  await server.listen();
  return {
    server,
    port: server.address().port,
    db,
    sessions,
    async close() {
      await server.close();
      db.close();
    },
  };
}
