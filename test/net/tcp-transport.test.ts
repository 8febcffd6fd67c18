import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { NodeListener } from '../../src/net/listener.js';
import { TcpTransport, type PeerAddress, type TcpTransportOptions } from '../../src/net/tcp-transport.js';
import { capturingLogger, waitFor } from './test-logger.js';

// ---------------------------------------------------------------- helpers


const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

/** One node: a listener on its port plus a transport wired to it, as the runtime will wire them. */
class TestNode {
  readonly log = capturingLogger();
  readonly received: Array<{ from: number; msg: unknown }> = [];
  readonly events: string[] = [];
  listener: NodeListener | null = null;
  transport: TcpTransport | null = null;
  port = 0;

  constructor(
    readonly id: number,
    readonly cluster = 'test',
  ) {}

  async listen(port = 0): Promise<void> {
    this.listener = new NodeListener({
      host: '127.0.0.1',
      port,
      maxFrameBytes: 1024 * 1024,
      logger: this.log,
      onPeerConnection: (hello, conn) => this.transport?.acceptInbound(hello, conn) ?? false,
      onClientConnection: (_first, conn) => conn.close(),
    });
    await this.listener.listen();
    this.port = this.listener.address()!.port;
  }

  async stopListening(): Promise<void> {
    await this.listener?.close();
    this.listener = null;
  }

  start(peers: PeerAddress[], extra: Partial<TcpTransportOptions> = {}): TcpTransport {
    this.transport = new TcpTransport({
      selfId: this.id,
      cluster: this.cluster,
      peers,
      maxFrameBytes: 1024 * 1024,
      logger: this.log,
      onMessage: (from, msg) => this.received.push({ from, msg }),
      onPeerConnected: (id) => this.events.push(`up:${id}`),
      onPeerDisconnected: (id, reason) => this.events.push(`down:${id}:${reason}`),
      ...extra,
    });
    return this.transport;
  }

  address(): PeerAddress {
    return { id: this.id, host: '127.0.0.1', port: this.port };
  }

  from(id: number): unknown[] {
    return this.received.filter((r) => r.from === id).map((r) => r.msg);
  }

  async stop(): Promise<void> {
    await this.transport?.close();
    await this.stopListening();
  }
}

async function cluster(
  t: { after: (fn: () => Promise<void>) => void },
  ids: number[],
  extra: Partial<TcpTransportOptions> = {},
): Promise<TestNode[]> {
  const nodes = ids.map((id) => new TestNode(id));
  for (const n of nodes) await n.listen();
  const peers = nodes.map((n) => n.address());
  for (const n of nodes) n.start(peers, extra);
  t.after(async () => {
    for (const n of nodes) await n.stop();
  });
  return nodes;
}

// ---------------------------------------------------------------- tests

test('transport: three nodes exchange messages over one port each, in order', async (t) => {
  const nodes = await cluster(t, [1, 2, 3]);
  for (const a of nodes) {
    for (const b of nodes) {
      if (a === b) continue;
      for (let seq = 1; seq <= 20; seq++) a.transport!.send(b.id, { type: 'PING', seq, from: a.id });
    }
  }
  await waitFor(() => nodes.every((n) => n.received.length === 40), 'every node to receive 40 messages');
  for (const n of nodes) {
    for (const other of nodes) {
      if (other === n) continue;
      assert.deepEqual(
        n.from(other.id),
        Array.from({ length: 20 }, (_, i) => ({ type: 'PING', seq: i + 1, from: other.id })),
      );
    }
    assert.deepEqual(
      [...n.events].sort(),
      nodes.filter((o) => o !== n).map((o) => `up:${o.id}`),
    );
    assert.ok(n.log.find('info', /^accepted peer connection from node \d \(127\.0\.0\.1:\d+\)$/));
  }
  assert.ok(nodes[0]!.transport!.isConnected(2));
});

test('transport: reconnects after the peer listener restarts on the same port', async (t) => {
  const [a, b] = await cluster(t, [1, 2]);
  a!.transport!.send(2, { type: 'PING', seq: 1 });
  await waitFor(() => b!.received.length === 1, 'the first message');
  const port = b!.port;
  await b!.stopListening(); // destroys A's outbound connection to B
  await waitFor(() => a!.events.some((e) => e.startsWith('down:2:')), 'A to see B go down');
  assert.equal(a!.transport!.isConnected(2), false);
  await sleep(300);
  await b!.listen(port);
  await waitFor(() => a!.transport!.isConnected(2), 'A to reconnect to B', 5000);
  a!.transport!.send(2, { type: 'PING', seq: 2 });
  await waitFor(() => b!.received.length === 2, 'the message after the restart');
  assert.deepEqual(b!.from(1), [
    { type: 'PING', seq: 1 },
    { type: 'PING', seq: 2 },
  ]);
  assert.deepEqual(
    a!.events.filter((e) => e.endsWith(':2') || e.startsWith('down:2')).map((e) => e.split(':').slice(0, 2).join(':')),
    ['up:2', 'down:2', 'up:2'],
  );
  assert.ok(a!.log.find('info', /^connection to node 2 lost: /));
});

test('transport: a peer of another cluster is refused and both sides log why', async (t) => {
  const [a] = await cluster(t, [1, 2]);
  const stranger = new TestNode(2, 'other');
  await stranger.listen();
  stranger.start([a!.address(), stranger.address()]);
  t.after(() => stranger.stop());
  await waitFor(
    () => a!.log.find('warn', /^refused peer connection from 127\.0\.0\.1:\d+: cluster 'other' is not 'test'$/) !== undefined,
    'the refusal log line',
  );
  await waitFor(
    () => stranger.log.find('warn', /^node 1 at 127\.0\.0\.1:\d+ refused our connection: peer connection refused: cluster mismatch$/) !== undefined,
    'the refused side to log the error frame',
  );
  stranger.transport!.send(1, { type: 'PING' });
  await sleep(200);
  assert.equal(a!.from(2).filter((m) => (m as { type: string }).type === 'PING').length, 0);
});

test('transport: unknown node ids (and our own id) are refused and logged', async (t) => {
  const [a] = await cluster(t, [1, 2]);
  const unknown = new TestNode(9);
  await unknown.listen();
  unknown.start([a!.address(), unknown.address()]);
  const impostor = new TestNode(1); // claims to be node 1, which is A itself
  await impostor.listen();
  impostor.start([{ ...a!.address(), id: 2 }, impostor.address()]);
  t.after(async () => {
    await unknown.stop();
    await impostor.stop();
  });
  await waitFor(() => a!.log.find('warn', /^refused peer connection from 127\.0\.0\.1:\d+: unknown node id 9$/) !== undefined, 'refusal of node 9');
  await waitFor(
    () => a!.log.find('warn', /^refused peer connection from 127\.0\.0\.1:\d+: unknown node id 1 \(this node's own id\)$/) !== undefined,
    'refusal of our own id',
  );
  unknown.transport!.send(1, { type: 'PING' });
  await sleep(200);
  assert.equal(a!.received.length, 0);
  // The refused nodes back off instead of reconnecting in a tight loop.
  const refusals = a!.log.lines.filter((l) => /unknown node id 9/.test(l.msg)).length;
  assert.ok(refusals <= 8, `node 9 reconnected ${refusals} times in well under a second`);
});

test('transport: send to a down peer does not throw, queues, and delivers in order on connect', async (t) => {
  const a = new TestNode(1);
  const b = new TestNode(2);
  await a.listen();
  const bPort = await freePort();
  b.port = bPort;
  const peers = [a.address(), b.address()];
  a.start(peers);
  t.after(async () => {
    await a.stop();
    await b.stop();
  });
  for (let seq = 1; seq <= 5; seq++) assert.doesNotThrow(() => a.transport!.send(2, { type: 'REPLICATE', seq }));
  assert.equal(a.transport!.queuedMessages(2), 5);
  await sleep(200); // a few failed connection attempts
  assert.ok(a.log.find('info', /^cannot connect to node 2 at 127\.0\.0\.1:\d+: ECONNREFUSED; retrying$/));
  await b.listen(bPort);
  b.start(peers);
  await waitFor(() => b.received.length === 5, 'the queued messages', 5000);
  assert.deepEqual(
    b.from(1),
    [1, 2, 3, 4, 5].map((seq) => ({ type: 'REPLICATE', seq })),
  );
  assert.equal(a.transport!.queuedMessages(2), 0);
});

test('transport: the queue bound drops the oldest messages with a rate-limited warning', async (t) => {
  const a = new TestNode(1);
  const b = new TestNode(2);
  await a.listen();
  const bPort = await freePort();
  b.port = bPort;
  const peers = [a.address(), b.address()];
  a.start(peers, { maxQueuedMessagesPerPeer: 3 });
  t.after(async () => {
    await a.stop();
    await b.stop();
  });
  for (let seq = 1; seq <= 6; seq++) a.transport!.send(2, { type: seq <= 2 ? 'HEARTBEAT' : 'REPLICATE', seq });
  assert.equal(a.transport!.queuedMessages(2), 3);
  const warns = a.log.lines.filter((l) => l.level === 'warn' && l.msg.startsWith('failed to send '));
  assert.equal(warns.length, 1, 'three drops within a second give one warning');
  assert.match(warns[0]!.msg, /^failed to send HEARTBEAT to node 2: not connected and the send queue is full \(3 messages\); dropped the oldest message$/);
  await b.listen(bPort);
  b.start(peers);
  await waitFor(() => b.received.length === 3, 'the three newest messages');
  assert.deepEqual(
    b.from(1).map((m) => (m as { seq: number }).seq),
    [4, 5, 6],
  );
});

test('transport: send filter drops and delays messages', async (t) => {
  const [a, b] = await cluster(t, [1, 2]);
  await waitFor(() => a!.transport!.isConnected(2), 'the connection');
  a!.transport!.setSendFilter((_to, msg) => {
    const seq = (msg as { seq: number }).seq;
    if (seq === 2) return 'drop';
    if (seq === 3) return { delayMs: 300 };
    return 'deliver';
  });
  const started = Date.now();
  for (let seq = 1; seq <= 4; seq++) a!.transport!.send(2, { type: 'PING', seq });
  await waitFor(() => b!.received.length === 2, 'the undelayed messages');
  assert.deepEqual(b!.from(1).map((m) => (m as { seq: number }).seq), [1, 4]);
  await waitFor(() => b!.received.length === 3, 'the delayed message');
  assert.ok(Date.now() - started >= 290, 'the delayed message arrived after its delay');
  assert.deepEqual(b!.from(1).map((m) => (m as { seq: number }).seq), [1, 4, 3]);
  a!.transport!.setSendFilter(null);
  a!.transport!.send(2, { type: 'PING', seq: 2 });
  await waitFor(() => b!.received.length === 4, 'a message after the filter was removed');
  assert.ok(a!.log.find('debug', /^send filter dropped PING to node 2$/));
});

test('transport: inbound frames without a string type are dropped and logged; onMessage errors are contained', async (t) => {
  let throwOnce = true;
  const received: unknown[] = [];
  const a = new TestNode(1);
  await a.listen();
  a.start([a.address(), { id: 2, host: '127.0.0.1', port: await freePort() }], {
    onMessage: (_from, msg) => {
      if (throwOnce) {
        throwOnce = false;
        throw new Error('core bug');
      }
      received.push(msg);
    },
  });
  t.after(() => a.stop());
  // A raw peer: HELLO, then bad and good frames.
  const s = net.connect({ host: '127.0.0.1', port: a.port });
  await new Promise((r) => s.once('connect', r));
  t.after(() => {
    s.destroy();
  });
  s.write('{"type":"HELLO","protocol":1,"cluster":"test","nodeId":2}\n');
  s.write('[1,2]\n{"type":5}\n"str"\n{"type":"VOTE","n":1}\n{"type":"VOTE","n":2}\n');
  await waitFor(() => received.length === 1, 'the valid frame after the throwing one');
  assert.deepEqual(received, [{ type: 'VOTE', n: 2 }]);
  assert.ok(a.log.find('warn', /^dropped frame from node 2 \(127\.0\.0\.1:\d+\): not an object with a string "type"$/));
  assert.ok(a.log.find('error', /^onMessage threw for VOTE from node 2: core bug$/));
});

test('transport: bad sends never throw; close() stops reconnecting', async (t) => {
  const a = new TestNode(1);
  await a.listen();
  const downPort = await freePort();
  const transport = a.start([a.address(), { id: 2, host: '127.0.0.1', port: downPort }]);
  t.after(() => a.stop());
  const circular: Record<string, unknown> = { type: 'REPLICATE' };
  circular['self'] = circular;
  assert.doesNotThrow(() => transport.send(7, { type: 'PING' }));
  assert.doesNotThrow(() => transport.send(1, { type: 'PING' }));
  assert.doesNotThrow(() => transport.send(2, { notype: true }));
  assert.doesNotThrow(() => transport.send(2, circular));
  assert.doesNotThrow(() => transport.send(2, null as unknown as object));
  assert.doesNotThrow(() => transport.send(2, { type: 'SNAPSHOT', data: 'x'.repeat(2 * 1024 * 1024) }));
  assert.ok(a.log.find('warn', /^failed to send PING to node 7: unknown node id 7 \(not a configured peer\)$/));
  assert.ok(a.log.find('warn', /^failed to send PING to node 1: unknown node id 1/));
  assert.ok(a.log.find('warn', /^failed to send \? to node 2: message has no string "type"$/));
  assert.ok(a.log.find('warn', /^failed to send REPLICATE to node 2: cannot encode: /));
  assert.ok(a.log.find('warn', /^failed to send SNAPSHOT to node 2: frame of \d+ bytes exceeds maxFrameBytes=1048576$/));
  assert.equal(transport.queuedMessages(2), 0);

  // After close(), no more connection attempts to the down peer: start listening there and watch.
  await transport.close();
  const watcher = net.createServer((sock) => {
    connections++;
    sock.destroy();
  });
  let connections = 0;
  await new Promise<void>((r) => watcher.listen(downPort, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => watcher.close(() => r())));
  await sleep(2500); // longer than the maximum backoff
  assert.equal(connections, 0);
  assert.doesNotThrow(() => transport.send(2, { type: 'PING' }));
  assert.equal(transport.queuedMessages(2), 0);
});

test('transport: invalid peer configuration is rejected with the field named', () => {
  const base = {
    selfId: 1,
    cluster: 'test',
    maxFrameBytes: 1024,
    logger: capturingLogger(),
    onMessage: () => {},
  };
  assert.throws(
    () => new TcpTransport({ ...base, peers: [{ id: 2, host: 'h', port: 1 }, { id: 2, host: 'h', port: 2 }] }),
    /peer id 2 appears twice/,
  );
  assert.throws(() => new TcpTransport({ ...base, peers: [{ id: 2, host: 'h', port: 0 }] }), /peer 2: port must be 1\.\.65535/);
  assert.throws(() => new TcpTransport({ ...base, cluster: '', peers: [] }), /cluster must be a non-empty string/);
  assert.throws(() => new TcpTransport({ ...base, peers: [], maxQueuedMessagesPerPeer: 0 }), /maxQueuedMessagesPerPeer/);
});
