// A small TCP server speaking the client protocol (docs/client-protocol.md), for testing the client
// library and CLI while the real node is built. Its SQL "engine" is deliberately trivial: what is
// under test is framing, correlation, failover and error handling, not SQL.
import { createServer, type Server, type Socket } from 'node:net';
import { FrameDecoder, encodeFrame } from '../../src/wire/framing.js';

export interface Request {
  readonly type: string;
  readonly id: string;
  readonly sql?: string;
  readonly params?: unknown[];
  readonly [k: string]: unknown;
}

export interface Ctx {
  readonly socket: Socket;
  readonly server: FakeServer;
  send(frame: unknown): void;
  sendRaw(text: string): void;
}

/** Return a frame to send it, undefined to stay silent, or do anything with ctx. */
export type Handler = (req: Request, ctx: Ctx) => unknown | undefined;

export interface FakeServer {
  readonly port: number;
  readonly endpoint: string;
  /** Every request received, in order (client keep-alive PINGs included). */
  readonly requests: Request[];
  connections: number;
  /** Ids of QUERY requests the server applied (a re-sent id is not applied again). */
  readonly applied: string[];
  close(): Promise<void>;
}

export const SAMPLE_STATUS = {
  nodeId: 1,
  coordinator: 3,
  term: 7,
  commitIndex: 42,
  appliedIndex: 41,
  lastIndex: 43,
  role: 'follower',
  healthy: true,
  nodes: [
    { id: 1, online: true, lastHeartbeatMsAgo: null, matchIndex: null },
    { id: 2, online: false, lastHeartbeatMsAgo: 15300, matchIndex: null },
    { id: 3, online: true, lastHeartbeatMsAgo: 420, matchIndex: null },
  ],
};

/**
 * Default behaviour: PING -> PONG, STATUS -> SAMPLE_STATUS, QUERY -> one result per `;`-separated
 * statement (SELECT: two rows; other: 1 row affected), de-duplicated by id. SQL containing
 * NO_QUORUM or SYNTAX answers with that error.
 */
export function defaultHandler(req: Request, ctx: Ctx): unknown {
  switch (req.type) {
    case 'PING':
      return { type: 'PONG', id: req.id };
    case 'STATUS':
      return { type: 'STATUS', id: req.id, status: SAMPLE_STATUS };
    case 'QUERY': {
      const sql = String(req.sql ?? '');
      if (sql.includes('NO_QUORUM')) {
        return { type: 'ERROR', id: req.id, error: { code: 'NO_QUORUM', message: 'only 1 of 3 nodes reachable', coordinatorHint: 3 } };
      }
      if (sql.includes('SYNTAX')) {
        return { type: 'ERROR', id: req.id, error: { code: 'SQL_ERROR', message: 'near "SYNTAX": syntax error', sql: { engineCode: 'SQLITE_ERROR' } } };
      }
      const duplicate = ctx.server.applied.includes(req.id);
      if (!duplicate) ctx.server.applied.push(req.id);
      const results = sql
        .split(';')
        .map((s) => s.trim())
        .filter((s) => s !== '')
        .map((s) =>
          /^select/i.test(s)
            ? { columns: ['id', 'name'], rows: [[1, 'alice'], [2, null]], affectedRows: 0, lastInsertId: null }
            : { columns: [], rows: [], affectedRows: 1, lastInsertId: ctx.server.applied.length },
        );
      return { type: 'RESULT', id: req.id, results, duplicate };
    }
    default:
      return { type: 'ERROR', id: req.id, error: { code: 'BAD_REQUEST', message: `unknown type ${req.type}` } };
  }
}

export async function startFakeServer(handler: Handler = defaultHandler): Promise<FakeServer> {
  const sockets = new Set<Socket>();
  let server: Server;
  const fake: FakeServer = {
    port: 0,
    endpoint: '',
    requests: [],
    connections: 0,
    applied: [],
    close: () =>
      new Promise<void>((res) => {
        for (const s of sockets) s.destroy();
        server.close(() => res());
      }),
  };
  server = createServer((socket) => {
    sockets.add(socket);
    fake.connections++;
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    const decoder = new FrameDecoder();
    const ctx: Ctx = {
      socket,
      server: fake,
      send: (frame) => {
        if (!socket.destroyed) socket.write(encodeFrame(frame));
      },
      sendRaw: (text) => {
        if (!socket.destroyed) socket.write(text);
      },
    };
    socket.on('data', (data) => {
      for (const ev of decoder.push(data)) {
        if (ev.type !== 'frame') continue;
        const req = ev.value as Request;
        fake.requests.push(req);
        const reply = handler(req, ctx);
        if (reply !== undefined) ctx.send(reply);
      }
    });
  });
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', () => res()));
  const port = (server.address() as { port: number }).port;
  Object.assign(fake, { port, endpoint: `127.0.0.1:${port}` });
  return fake;
}

/** A port with nothing listening (connections are refused). */
export async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((res) => srv.listen(0, '127.0.0.1', () => res()));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((res) => srv.close(() => res()));
  return port;
}
