// Liveness of outbound connections (docs/design-transport.md, "Liveness"): real TCP on loopback, with
// a proxy between node 1 and node 2 that can go silent like a partition (it keeps the connections
// open and drops every byte, so neither side gets an error).
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { NodeListener } from '../../src/net/listener.js';
import { TcpTransport, livenessTimings, parseTestPeerDelay, type PeerAddress, type TcpTransportOptions } from '../../src/net/tcp-transport.js';
import { capturingLogger, waitFor } from './test-logger.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const HB = 400;

/** A TCP proxy to `target`. silent(): every open and every new connection drops all bytes, forever. */
class SilentProxy {
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();
  private silentNow = false;
  /** Connections opened while silent stay silent after heal(), like a connection stuck in retransmission. */
  private readonly dead = new WeakSet<net.Socket>();
  port = 0;

  constructor(private readonly targetPort: number) {
    this.server = net.createServer((client) => this.onClient(client));
  }
  async listen(): Promise<void> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.port = (this.server.address() as net.AddressInfo).port;
  }
  silent(): void {
    this.silentNow = true;
    for (const s of this.sockets) this.dead.add(s);
  }
  heal(): void {
    this.silentNow = false;
  }
  private onClient(client: net.Socket): void {
    this.sockets.add(client);
    client.on('error', () => {});
    if (this.silentNow) this.dead.add(client);
    const upstream = net.connect({ host: '127.0.0.1', port: this.targetPort });
    this.sockets.add(upstream);
    upstream.on('error', () => {});
    client.on('data', (d) => {
      if (!this.dead.has(client)) upstream.write(d);
    });
    upstream.on('data', (d) => {
      if (!this.dead.has(client)) client.write(d);
    });
    const end = (): void => {
      if (this.dead.has(client)) return; // a partition delivers no FIN either
      client.destroy();
      upstream.destroy();
    };
    client.on('close', end);
    upstream.on('close', end);
  }
  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

interface Pair {
  readonly a: TcpTransport;
  readonly aLog: ReturnType<typeof capturingLogger>;
  readonly received: Array<{ seq: number; at: number }>;
  readonly proxy: SilentProxy;
}

/** Node 1 reaches node 2 through the proxy; node 2 reaches node 1 directly. */
async function pair(t: { after: (fn: () => Promise<void>) => void }, extra: Partial<TcpTransportOptions>): Promise<Pair> {
  const aLog = capturingLogger();
  const bLog = capturingLogger();
  const received: Array<{ seq: number; at: number }> = [];
  let a: TcpTransport | null = null;
  let b: TcpTransport | null = null;
  const listen = async (log: typeof aLog, get: () => TcpTransport | null): Promise<NodeListener> => {
    const l = new NodeListener({
      host: '127.0.0.1',
      port: 0,
      maxFrameBytes: 1 << 20,
      logger: log,
      onPeerConnection: (hello, conn) => get()?.acceptInbound(hello, conn) ?? false,
      onClientConnection: (_f, conn) => conn.close(),
    });
    await l.listen();
    return l;
  };
  const la = await listen(aLog, () => a);
  const lb = await listen(bLog, () => b);
  const proxy = new SilentProxy(lb.address()!.port);
  await proxy.listen();
  const base = { cluster: 'live', maxFrameBytes: 1 << 20, ...extra };
  const addrA: PeerAddress = { id: 1, host: '127.0.0.1', port: la.address()!.port };
  a = new TcpTransport({ ...base, selfId: 1, peers: [addrA, { id: 2, host: '127.0.0.1', port: proxy.port }], logger: aLog, onMessage: () => {} });
  b = new TcpTransport({
    ...base,
    selfId: 2,
    peers: [addrA, { id: 2, host: '127.0.0.1', port: lb.address()!.port }],
    logger: bLog,
    onMessage: (_from, msg) => received.push({ seq: (msg as { seq: number }).seq, at: Date.now() }),
  });
  t.after(async () => {
    await a?.close();
    await b?.close();
    await proxy.close();
    await la.close();
    await lb.close();
  });
  return { a, aLog, received, proxy };
}

/** Sends {type:'DATA', seq} from node 1 to node 2 every 20 ms until stopped; returns the sender's clock per seq. */
function ticker(a: TcpTransport): { sentAt: Map<number, number>; stop: () => void } {
  const sentAt = new Map<number, number>();
  let seq = 0;
  const timer = setInterval(() => {
    seq++;
    sentAt.set(seq, Date.now());
    a.send(2, { type: 'DATA', seq });
  }, 20);
  return { sentAt, stop: () => clearInterval(timer) };
}

/** Time from `healAt` until node 2 received a message that node 1 sent after the heal. */
async function recoveryMs(p: Pair, sentAt: Map<number, number>, healAt: number, timeoutMs: number): Promise<number | null> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const fresh = p.received.find((r) => (sentAt.get(r.seq) ?? 0) >= healAt);
    if (fresh !== undefined) return fresh.at - healAt;
    await sleep(10);
  }
  return null;
}

test('liveness: timings are derived from the heartbeat interval', () => {
  const l = livenessTimings(2000);
  assert.deepEqual(
    { ping: l.pingIntervalMs, silent: l.silenceLimitMs, connect: l.connectTimeoutMs, cap: l.backoff.maxDelayMs },
    { ping: 1000, silent: 3000, connect: 1000, cap: 500 },
  );
  assert.throws(() => livenessTimings(0), /heartbeatIntervalMs must be a positive integer/);
});

test('liveness: a silent outbound connection is destroyed and dialled afresh', async (t) => {
  const p = await pair(t, { heartbeatIntervalMs: HB });
  await waitFor(() => p.a.isConnected(2), 'node 1 connected to node 2');
  const tick = ticker(p.a);
  t.after(() => tick.stop());
  await waitFor(() => p.received.length > 5, 'messages through the proxy');
  const silentAt = Date.now();
  p.proxy.silent();
  await waitFor(() => p.aLog.findEvent('peer-connection-silent', { peer: 2 }) !== undefined, 'peer-connection-silent', 5000);
  const detectedMs = Date.now() - silentAt;
  const limits = livenessTimings(HB);
  assert.ok(detectedMs <= limits.silenceLimitMs + 2 * limits.pingIntervalMs + 200, `detected after ${detectedMs} ms`);
  // It keeps dialling with the short capped delay: several fresh connections within a few limits.
  await sleep(3 * limits.silenceLimitMs);
  const dials = p.aLog.lines.filter((l) => (l.obj as { event?: string }).event === 'peer-connected').length;
  assert.ok(dials >= 3, `expected >= 3 fresh connections while silent, saw ${dials}`);
});

test('liveness: after a partition longer than the silence limit heals, the link is used again within about one heartbeat', async (t) => {
  const p = await pair(t, { heartbeatIntervalMs: HB });
  const ms = await cutAndHeal(t, p, 10_000);
  assert.notEqual(ms, null, 'the link never carried a message again');
  // Worst case with a peer that accepts but drops (the proxy): silence limit + one ping interval + backoff cap.
  const limits = livenessTimings(HB);
  const bound = limits.silenceLimitMs + limits.pingIntervalMs + limits.backoff.maxDelayMs + 300; // + scheduling slack on a loaded machine
  t.diagnostic(`recovered ${ms} ms after the heal (bound ${bound} ms, heartbeat ${HB} ms)`);
  assert.ok(ms! <= bound, `recovered after ${ms} ms, bound ${bound} ms`);
});

test('liveness: without it (no heartbeatIntervalMs) the dead connection is kept and the healed link stays unused', async (t) => {
  const p = await pair(t, {});
  const ms = await cutAndHeal(t, p, 3 * HB);
  assert.equal(ms, null, 'the check above would pass without the liveness check: it tests nothing');
});

test('test-only delay: REPLISQL_TEST_PEER_DELAY_MS is parsed strictly', () => {
  assert.equal(parseTestPeerDelay({}), null);
  assert.equal(parseTestPeerDelay({ REPLISQL_TEST_PEER_DELAY_MS: '' }), null);
  assert.equal(parseTestPeerDelay({ REPLISQL_TEST_PEER_DELAY_MS: '150' }), 150);
  for (const bad of ['1.5', '-3', 'abc', '10ms', '60001']) {
    assert.throws(() => parseTestPeerDelay({ REPLISQL_TEST_PEER_DELAY_MS: bad }), /REPLISQL_TEST_PEER_DELAY_MS must be an integer/);
  }
});

/**
 * Messages flow from node 1 to node 2 through the proxy; then the proxy goes silent for six
 * heartbeats (longer than the silence limit) and heals. Resolves with how long after the heal a
 * message got through again (null within `waitMs`).
 */
async function cutAndHeal(t: TestContext, p: Pair, waitMs: number): Promise<number | null> {
  await waitFor(() => p.a.isConnected(2), 'node 1 connected to node 2');
  const tick = ticker(p.a);
  t.after(() => tick.stop());
  await waitFor(() => p.received.length > 5, 'messages through the proxy');
  p.proxy.silent();
  await sleep(6 * HB);
  const healAt = Date.now();
  p.proxy.heal();
  return recoveryMs(p, tick.sentAt, healAt, waitMs);
}
