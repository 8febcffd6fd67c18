import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { NodeListener, type FramedConnection, type NodeListenerOptions } from '../../src/net/listener.js';
import { capturingLogger, waitFor, type CapturingLogger } from './test-logger.js';

// ---------------------------------------------------------------- helpers


/** A plain TCP client that records the frames it receives. */
interface RawClient {
  readonly socket: net.Socket;
  readonly frames: unknown[];
  closed: boolean;
  write(s: string | Buffer): void;
}
async function rawClient(port: number): Promise<RawClient> {
  const socket = net.connect({ host: '127.0.0.1', port });
  const client: RawClient = { socket, frames: [], closed: false, write: (s) => socket.write(s) };
  let buf = '';
  socket.on('data', (d) => {
    buf += d.toString('utf8');
    let nl: number;
    while ((nl = buf.indexOf('\n')) !== -1) {
      client.frames.push(JSON.parse(buf.slice(0, nl)));
      buf = buf.slice(nl + 1);
    }
  });
  socket.on('error', () => {});
  socket.on('close', () => {
    client.closed = true;
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  return client;
}

interface Harness {
  readonly listener: NodeListener;
  readonly log: CapturingLogger;
  readonly port: number;
  /** Client connections, with every frame they sent after the first. */
  readonly clients: Array<{ first: unknown; conn: FramedConnection; frames: unknown[] }>;
  readonly peers: Array<{ hello: { cluster: string; nodeId: number }; conn: FramedConnection }>;
}

/** A listener whose client handler echoes `{type:"REPLY", got: frame}` for every frame. */
async function startListener(
  t: { after: (fn: () => Promise<void>) => void },
  extra: Partial<NodeListenerOptions> = {},
): Promise<Harness> {
  const log = capturingLogger();
  const clients: Harness['clients'] = [];
  const peers: Harness['peers'] = [];
  const listener = new NodeListener({
    host: '127.0.0.1',
    port: 0,
    maxFrameBytes: 1024 * 1024,
    logger: log,
    onPeerConnection: (hello, conn) => {
      peers.push({ hello, conn });
      return true;
    },
    onClientConnection: (first, conn) => {
      const entry = { first, conn, frames: [] as unknown[] };
      clients.push(entry);
      conn.send({ type: 'REPLY', got: first });
      conn.onFrame((f) => {
        entry.frames.push(f);
        conn.send({ type: 'REPLY', got: f });
      });
    },
    ...extra,
  });
  await listener.listen();
  t.after(() => listener.close());
  const port = listener.address()!.port;
  return { listener, log, port, clients, peers };
}

async function assertServes(h: Harness): Promise<void> {
  const c = await rawClient(h.port);
  c.write('{"type":"PING","id":"check"}\n');
  await waitFor(() => c.frames.length >= 1, 'a reply from a fresh client connection');
  assert.deepEqual(c.frames[0], { type: 'REPLY', got: { type: 'PING', id: 'check' } });
  c.socket.destroy();
}

// ---------------------------------------------------------------- tests

test('listener: a non-HELLO first frame makes a client connection; frames that follow keep their order', async (t) => {
  const h = await startListener(t);
  const c = await rawClient(h.port);
  // Three frames in one write: the second and third arrive while the owner changes.
  c.write('{"type":"QUERY","id":1}\n{"type":"QUERY","id":2}\n{"type":"QUERY","id":3}\n');
  await waitFor(() => c.frames.length >= 3, 'three replies');
  assert.equal(h.clients.length, 1);
  assert.deepEqual(h.clients[0]!.first, { type: 'QUERY', id: 1 });
  assert.deepEqual(h.clients[0]!.frames, [
    { type: 'QUERY', id: 2 },
    { type: 'QUERY', id: 3 },
  ]);
  assert.equal(h.peers.length, 0);
  assert.match(h.clients[0]!.conn.remote, /^127\.0\.0\.1:\d+$/);
  c.socket.destroy();
});

test('listener: frames are held until a client handler that subscribes late is ready', async (t) => {
  const got: unknown[] = [];
  const h = await startListener(t, {
    onClientConnection: (first, conn) => {
      got.push(first);
      setTimeout(() => conn.onFrame((f) => got.push(f)), 100);
    },
  });
  const c = await rawClient(h.port);
  c.write('{"n":1}\n{"n":2}\n');
  await new Promise((r) => setTimeout(r, 30));
  c.write('{"n":3}\n');
  await waitFor(() => got.length >= 3, 'three frames');
  assert.deepEqual(got, [{ n: 1 }, { n: 2 }, { n: 3 }]);
  c.socket.destroy();
});

test('listener: garbage bytes and malformed JSON get BAD_REQUEST error frames, are logged, and the connection keeps going', async (t) => {
  const h = await startListener(t);
  const c = await rawClient(h.port);
  const garbage = Buffer.from([0xff, 0xfe, 0x00, 0x01, 0x80, 0x7b, 0x0a]); // ends with '{' and '\n'
  c.write(garbage);
  c.write('{"type": "QUERY", "sql": \n');
  c.write('\n');
  await waitFor(() => c.frames.length >= 3, 'three error frames');
  for (const f of c.frames.slice(0, 3)) {
    const e = f as { type: string; id: unknown; error: { code: string; message: string; reason: string } };
    assert.equal(e.type, 'ERROR');
    assert.equal(e.id, null);
    assert.equal(e.error.code, 'BAD_REQUEST');
    assert.equal(e.error.reason, 'MALFORMED_JSON');
    assert.match(e.error.message, /malformed JSON|empty frame/);
  }
  const line = h.log.findEvent('bad-frame', { code: 'MALFORMED_JSON' });
  assert.ok(line, 'frame error logged');
  assert.match(line.msg, /^bad frame from 127\.0\.0\.1:\d+: malformed JSON/, 'with the remote address');
  // The same connection still works, now as a client connection.
  c.write('{"type":"QUERY","id":7}\n');
  await waitFor(() => c.frames.length >= 4, 'the reply to a valid frame');
  assert.deepEqual(c.frames[3], { type: 'REPLY', got: { type: 'QUERY', id: 7 } });
  // Malformed JSON after the connection became a client connection: error frame again.
  c.write('not json\n');
  await waitFor(() => c.frames.length >= 5, 'an error frame on an established client connection');
  assert.equal((c.frames[4] as { type: string }).type, 'ERROR');
  // A connection reset by the other side does not hurt the listener.
  c.socket.resetAndDestroy();
  await assertServes(h);
});

test('listener: a truncated frame at close is logged and the listener keeps serving', async (t) => {
  const h = await startListener(t);
  const c = await rawClient(h.port);
  c.write('{"type":"QUERY","id":1}\n{"type":"QUERY","sq');
  await waitFor(() => c.frames.length >= 1, 'the reply to the complete frame');
  c.socket.end();
  await waitFor(() => h.log.find('warn', /closed in the middle of a frame/) !== undefined, 'the truncated-frame log line');
  const line = h.log.find('warn', /closed in the middle of a frame/)!;
  assert.match(line.msg, /^connection from 127\.0\.0\.1:\d+ closed in the middle of a frame; discarded 19 bytes/);
  await assertServes(h);
});

test('listener: a 100 MB line is discarded without buffering it; the client gets FRAME_TOO_LARGE and the listener keeps serving', async (t) => {
  const h = await startListener(t, { maxFrameBytes: 4 * 1024 * 1024 });
  const c = await rawClient(h.port);
  const chunk = Buffer.alloc(1024 * 1024, 0x61); // 1 MiB of 'a', written 100 times
  // Warm up first (a 20 MB line), so that the measurement sees the line, not JIT and heap setup.
  for (let i = 0; i < 20; i++) {
    if (!c.socket.write(chunk)) await new Promise((r) => c.socket.once('drain', r));
  }
  c.write('\n');
  await waitFor(() => c.frames.length >= 1, 'the error frame for the warm-up line', 20_000);
  c.frames.length = 0;
  const rssBefore = process.memoryUsage().rss;
  let rssPeak = rssBefore;
  for (let i = 0; i < 100; i++) {
    if (!c.socket.write(chunk)) await new Promise((r) => c.socket.once('drain', r));
    rssPeak = Math.max(rssPeak, process.memoryUsage().rss);
  }
  c.write('\n{"type":"QUERY","id":"after"}\n');
  await waitFor(() => c.frames.length >= 2, 'the error frame and the reply', 20_000);
  rssPeak = Math.max(rssPeak, process.memoryUsage().rss);
  const deltaMb = (rssPeak - rssBefore) / (1024 * 1024);
  t.diagnostic(`rss delta while receiving a 100 MB line: ${deltaMb.toFixed(1)} MB`);
  assert.ok(deltaMb < 50, `rss grew by ${deltaMb.toFixed(1)} MB while receiving a 100 MB line`);
  const err = c.frames[0] as { type: string; error: { code: string; message: string; reason: string } };
  assert.equal(err.type, 'ERROR');
  assert.equal(err.error.code, 'BAD_REQUEST');
  assert.equal(err.error.reason, 'FRAME_TOO_LARGE');
  assert.match(err.error.message, /^frame of 104857600 bytes exceeds maxFrameBytes=4194304/);
  assert.deepEqual(c.frames[1], { type: 'REPLY', got: { type: 'QUERY', id: 'after' } });
  assert.ok(h.log.findEvent('bad-frame', { code: 'FRAME_TOO_LARGE' }));
  c.socket.destroy();
  await assertServes(h);
});

test('listener: a connection without a complete first frame is closed after the timeout', async (t) => {
  const h = await startListener(t, { firstFrameTimeoutMs: 200 });
  const silent = await rawClient(h.port);
  const partial = await rawClient(h.port);
  partial.write('{"type":"QUE');
  const garbageOnly = await rawClient(h.port);
  garbageOnly.write('garbage\n'); // an error frame, but still no valid first frame
  const started = Date.now();
  await waitFor(() => silent.closed && partial.closed && garbageOnly.closed, 'the three connections to be closed', 3000);
  assert.ok(Date.now() - started >= 150, 'not closed before the timeout');
  assert.ok(h.log.find('warn', /^closing connection from 127\.0\.0\.1:\d+: no complete first frame within 200 ms$/));
  assert.equal(h.clients.length, 0);
  // A connection that did send its first frame in time stays open past the timeout.
  const ok = await rawClient(h.port);
  ok.write('{"type":"PING"}\n');
  await new Promise((r) => setTimeout(r, 350));
  assert.equal(ok.closed, false);
  ok.socket.destroy();
});

test('listener: an invalid HELLO is refused with a logged reason and an error frame, then closed', async (t) => {
  const h = await startListener(t);
  const cases: Array<[string, RegExp]> = [
    ['{"type":"HELLO","protocol":2,"cluster":"c","nodeId":1}', /unsupported protocol version 2 \(this node speaks 1\)/],
    ['{"type":"HELLO","protocol":"1","cluster":"c","nodeId":1}', /HELLO\.protocol must be a number, got string "1"/],
    ['{"type":"HELLO","protocol":1,"cluster":7,"nodeId":1}', /HELLO\.cluster must be a string, got number 7/],
    ['{"type":"HELLO","protocol":1,"cluster":"c","nodeId":1.5}', /HELLO\.nodeId must be a non-negative integer, got number 1\.5/],
    ['{"type":"HELLO","protocol":1,"cluster":"c"}', /HELLO\.nodeId must be a non-negative integer, got undefined/],
  ];
  for (const [hello, reason] of cases) {
    const c = await rawClient(h.port);
    c.write(hello + '\n');
    await waitFor(() => c.closed, `the connection to be closed after ${hello}`);
    assert.equal(c.frames.length, 1, hello);
    const e = c.frames[0] as { type: string; error: { code: string; message: string } };
    assert.equal(e.type, 'ERROR');
    assert.equal(e.error.code, 'BAD_REQUEST');
    assert.match(e.error.message, reason);
    const line = h.log.find('warn', new RegExp(`^refused peer connection from 127\\.0\\.0\\.1:\\d+: ${reason.source}`));
    assert.ok(line, `log line for ${hello}`);
  }
  assert.equal(h.peers.length, 0);
  assert.equal(h.clients.length, 0);
  await assertServes(h);
});

test('listener: a valid HELLO goes to the peer handler; false from it refuses the connection', async (t) => {
  let accept = true;
  const peers: Array<{ hello: unknown; frames: unknown[] }> = [];
  const h = await startListener(t, {
    onPeerConnection: (hello, conn) => {
      if (!accept) return false;
      const entry = { hello, frames: [] as unknown[] };
      peers.push(entry);
      conn.onFrame((f) => entry.frames.push(f));
      return true;
    },
  });
  const p = await rawClient(h.port);
  p.write('{"type":"HELLO","protocol":1,"cluster":"c","nodeId":3}\n{"type":"HEARTBEAT","term":1}\n');
  // Malformed input from a peer is logged but gets no error frame (peers have none).
  p.write('{oops\n{"type":"HEARTBEAT","term":2}\n');
  await waitFor(() => peers[0]?.frames.length === 2, 'two frames on the peer connection');
  assert.deepEqual(peers[0]!.hello, { cluster: 'c', nodeId: 3 });
  assert.deepEqual(peers[0]!.frames, [
    { type: 'HEARTBEAT', term: 1 },
    { type: 'HEARTBEAT', term: 2 },
  ]);
  assert.ok(h.log.findEvent('bad-frame', { code: 'MALFORMED_JSON' }));
  assert.equal(p.frames.length, 0);
  p.socket.destroy();

  accept = false;
  const q = await rawClient(h.port);
  q.write('{"type":"HELLO","protocol":1,"cluster":"c","nodeId":4}\n');
  await waitFor(() => q.closed, 'the refused peer connection to be closed');
  assert.deepEqual(q.frames, [{ type: 'ERROR', id: null, error: { code: 'BAD_REQUEST', message: 'peer connection refused' } }]);
});

test('listener: a client that does not read is disconnected when its unwritten bytes pass the bound', async (t) => {
  let serverConn: FramedConnection | null = null;
  const h = await startListener(t, {
    maxWritableBytes: 256 * 1024,
    onClientConnection: (first, conn) => {
      if (serverConn === null) serverConn = conn;
      else conn.send({ type: 'REPLY', got: first }); // later clients get the usual echo
    },
  });
  const c = await rawClient(h.port);
  c.socket.pause(); // never reads: the kernel buffers fill, then the connection's own buffer
  c.write('{"type":"SUBSCRIBE"}\n');
  await waitFor(() => serverConn !== null, 'the client connection');
  const conn = serverConn as unknown as FramedConnection;
  const payload = { type: 'ROWS', data: 'x'.repeat(64 * 1024) };
  let sent = 0;
  while (conn.send(payload)) {
    sent++;
    if (sent > 4000) break; // 256 MB: the bound must have been hit long before
    if (sent % 16 === 0) await new Promise((r) => setImmediate(r));
  }
  assert.ok(sent < 4000, 'send() returned false once the bound was passed');
  assert.equal(conn.isOpen, false);
  assert.ok(h.log.find('error', /^destroying connection to 127\.0\.0\.1:\d+: \d+ bytes waiting to be written exceed the bound of 262144$/));
  c.socket.resume(); // reading again, the client sees the end of the connection
  await waitFor(() => c.closed, 'the client socket to be closed');
  await assertServes(h);
});

test('listener: close() destroys every connection and stops accepting', async (t) => {
  const h = await startListener(t);
  const a = await rawClient(h.port);
  a.write('{"type":"PING"}\n');
  const b = await rawClient(h.port); // no first frame yet
  await waitFor(() => a.frames.length === 1, 'the first reply');
  assert.equal(h.listener.connectionCount, 2);
  await h.listener.close();
  await waitFor(() => a.closed && b.closed, 'both connections to be closed');
  assert.equal(h.listener.connectionCount, 0);
  await assert.rejects(rawClient(h.port));
});

test('listener: listen() rejects when the port is taken', async (t) => {
  const h = await startListener(t);
  const other = new NodeListener({
    host: '127.0.0.1',
    port: h.port,
    maxFrameBytes: 1024,
    logger: capturingLogger(),
    onPeerConnection: () => false,
    onClientConnection: () => {},
  });
  await assert.rejects(other.listen(), /EADDRINUSE/);
  await other.close();
});
