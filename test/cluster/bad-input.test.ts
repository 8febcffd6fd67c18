// Real processes: bad bytes from outside (clients and fake peers) are refused or dropped with a
// log line, and afterwards the node still answers and the cluster still commits writes (GUIDE §4).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { Cluster, sleep, waitUntil, type LogLine } from './harness.js';
import { encodeReplicatedCommand } from '../../src/apply/command.js';

let cluster: Cluster;
let term = 0;
/** Log lengths once node 3 leads, before any bad input. */
let marks = new Map<number, number>();

before(async () => {
  cluster = await Cluster.create({ nodes: 3 });
});

after(async () => {
  await cluster?.shutdown();
});

/** A raw TCP connection to a node: write bytes, read the JSON lines it answers. */
class RawConnection {
  readonly frames: unknown[] = [];
  closed = false;
  /** The local address as the node logs it (`remote` in its log lines). */
  readonly name: string;
  private buf = '';

  private constructor(private readonly socket: Socket) {
    this.name = `127.0.0.1:${socket.localPort}`;
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => {
      this.buf += d;
      let nl: number;
      while ((nl = this.buf.indexOf('\n')) !== -1) {
        const line = this.buf.slice(0, nl);
        this.buf = this.buf.slice(nl + 1);
        try {
          this.frames.push(JSON.parse(line));
        } catch {
          this.frames.push({ unparsable: line });
        }
      }
    });
    socket.on('error', () => undefined);
    socket.on('close', () => (this.closed = true));
  }

  static open(nodeId: number): Promise<RawConnection> {
    const spec = cluster.spec(nodeId);
    return new Promise((resolve, reject) => {
      const s = connect({ host: spec.host, port: spec.port }, () => resolve(new RawConnection(s)));
      s.once('error', reject);
    });
  }

  /** Writes and waits for the kernel to take the bytes (backpressure). */
  write(data: string | Buffer): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.socket.write(data)) resolve();
      else {
        const onDrain = (): void => {
          this.socket.off('close', onClose);
          resolve();
        };
        const onClose = (): void => {
          this.socket.off('drain', onDrain);
          reject(new Error('connection closed while writing'));
        };
        this.socket.once('drain', onDrain);
        this.socket.once('close', onClose);
      }
    });
  }

  send(frame: unknown): Promise<void> {
    return this.write(JSON.stringify(frame) + '\n');
  }

  waitFrame(pred: (f: Record<string, unknown>) => boolean, what: string, timeoutMs = 10_000): Promise<Record<string, unknown>> {
    return waitUntil(what, () => this.frames.find((f) => pred(f as Record<string, unknown>)) as Record<string, unknown> | undefined, { timeoutMs, intervalMs: 20 });
  }

  waitClosed(timeoutMs = 10_000): Promise<boolean> {
    return waitUntil('the node to close the connection', () => this.closed, { timeoutMs, intervalMs: 20 });
  }

  end(): void {
    this.socket.end();
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** An ERROR frame with `code` whose message matches `re`, or whose `reason` (BAD_REQUEST's finer cause) is `re`'s text. */
function errorWith(code: string, re: RegExp | { readonly reason: string }, id: string | null = null): (f: Record<string, unknown>) => boolean {
  return (f) => {
    const e = f['error'] as { code?: unknown; message?: unknown; reason?: unknown } | undefined;
    if (f['type'] !== 'ERROR' || f['id'] !== id || e?.code !== code || typeof e.message !== 'string') return false;
    return re instanceof RegExp ? re.test(e.message) : e.reason === re.reason;
  };
}

/** Waits for event `type` in node `id`'s log whose fields match `fields` (and, when given, naming `remote`). */
async function expectEvent(id: number, type: string, fields: Record<string, unknown>, remote: string | null, sinceLine: number): Promise<LogLine> {
  const matches = (l: LogLine): boolean =>
    Object.entries(fields).every(([k, v]) => (v instanceof RegExp ? typeof l[k] === 'string' && v.test(l[k] as string) : l[k] === v)) && (remote === null || l['remote'] === remote);
  return cluster.waitForEvent(id, type, { sinceLine, where: matches });
}

let probes = 0;
/** The target node still answers, and a write through another node is committed on every node. */
async function assertStillWorks(target: number, label: string): Promise<void> {
  const rows = await cluster.query(target, 'SELECT 1 + 1');
  assert.deepEqual(rows, [[2]], `node ${target} answers a query after ${label}`);
  const c = await cluster.client([1, 2, 3]);
  const value = `${label} #${++probes}`;
  await c.query('INSERT INTO probe (label) VALUES (?)', [value]);
  await cluster.closeClient(c);
  for (const id of [1, 2, 3]) {
    await waitUntil(`the write after ${label} on node ${id}`, async () => (await cluster.query(id, 'SELECT count(*) FROM probe WHERE label = ?', [value]))[0]?.[0] === 1, {
      timeoutMs: 15_000,
      intervalMs: 50,
    });
  }
}

function peakRssBytes(pid: number): number | null {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m === null ? null : Number(m[1]) * 1024;
  } catch {
    return null;
  }
}

test('setup: 3 nodes, node 3 coordinator', { timeout: 60_000 }, async () => {
  await cluster.check(async () => {
    const leader = await cluster.waitForCoordinator(3);
    term = leader.term;
    marks = new Map([1, 2, 3].map((id) => [id, cluster.logLines(id).length]));
    const c = await cluster.client(1);
    await c.query('CREATE TABLE probe (id INTEGER PRIMARY KEY, label TEXT NOT NULL)');
    await cluster.closeClient(c);
    await assertStillWorks(3, 'setup');
  });
});

test('garbage bytes are answered with BAD_REQUEST and logged', { timeout: 60_000 }, async () => {
  await cluster.check(async () => {
    const mark = cluster.logLines(3).length;
    const conn = await RawConnection.open(3);
    const garbage = Buffer.alloc(4096);
    for (let i = 0; i < garbage.length; i++) garbage[i] = (i * 37 + 11) % 256 === 0x0a ? 0xff : (i * 37 + 11) % 256;
    await conn.write(Buffer.concat([garbage, Buffer.from('\n')]));
    await conn.waitFrame(errorWith('BAD_REQUEST', { reason: 'MALFORMED_JSON' }), 'an ERROR frame for the garbage');
    await expectEvent(3, 'bad-frame', { code: 'MALFORMED_JSON' }, conn.name, mark);
    // The same connection is still usable.
    await conn.send({ type: 'PING', id: 'after-garbage' });
    await conn.waitFrame((f) => f['type'] === 'PONG' && f['id'] === 'after-garbage', 'a PONG after the garbage');
    conn.destroy();
    await assertStillWorks(3, 'garbage bytes');
  });
});

test('a truncated frame (connection closed mid-frame) is discarded and logged', { timeout: 60_000 }, async () => {
  await cluster.check(async () => {
    const mark = cluster.logLines(3).length;
    const conn = await RawConnection.open(3);
    await conn.send({ type: 'PING', id: 'before-truncated' });
    await conn.waitFrame((f) => f['type'] === 'PONG', 'a PONG');
    const partial = '{"type":"QUERY","id":"truncated","sql":"INSERT INTO probe (label) VALUES (\'truncated\')';
    await conn.write(partial);
    conn.end();
    await conn.waitClosed();
    const line = await expectEvent(3, 'truncated-frame', {}, conn.name, mark);
    assert.equal(line['bytes'], Buffer.byteLength(partial));
    await assertStillWorks(3, 'truncated frame');
    assert.deepEqual(await cluster.query(3, "SELECT count(*) FROM probe WHERE label = 'truncated'"), [[0]], 'the truncated write was not run');
  });
});

test('a 100 MB line is discarded without being buffered, answered and logged', { timeout: 120_000 }, async () => {
  await cluster.check(async () => {
    const mark = cluster.logLines(3).length;
    const pid = cluster.proc(3)!.pid;
    const rssBefore = peakRssBytes(pid);
    const conn = await RawConnection.open(3);
    await conn.send({ type: 'PING', id: 'before-huge' });
    await conn.waitFrame((f) => f['type'] === 'PONG', 'a PONG');
    const total = 100 * 1024 * 1024;
    const chunk = Buffer.alloc(1024 * 1024, 'x'.charCodeAt(0));
    chunk.write('{"type":"QUERY","id":"huge","sql":"SELECT \'', 0);
    const started = Date.now();
    for (let sent = 0; sent < total; sent += chunk.length) await conn.write(chunk);
    await conn.write('\n');
    await conn.send({ type: 'PING', id: 'after-huge' });
    const err = await conn.waitFrame(errorWith('BAD_REQUEST', { reason: 'FRAME_TOO_LARGE' }), 'an ERROR frame for the 100 MB line', 60_000);
    assert.match(String((err['error'] as { message: string }).message), /exceeds maxFrameBytes/);
    await conn.waitFrame((f) => f['type'] === 'PONG' && f['id'] === 'after-huge', 'a PONG after the 100 MB line', 30_000);
    const line = await expectEvent(3, 'bad-frame', { code: 'FRAME_TOO_LARGE' }, conn.name, mark);
    assert.match(line.msg, new RegExp(`frame of ${total} bytes`), 'the log line names the frame size');
    const sendMs = Date.now() - started;
    conn.destroy();
    const rssAfter = peakRssBytes(pid);
    if (rssBefore !== null && rssAfter !== null) {
      const grownMb = (rssAfter - rssBefore) / (1024 * 1024);
      process.stderr.write(`[bad-input] 100 MB line sent in ${sendMs} ms; node 3 peak RSS ${(rssBefore / 1048576).toFixed(0)} -> ${(rssAfter / 1048576).toFixed(0)} MB\n`);
      // Read buffers awaiting GC cost tens of MB; keeping the line (chunks, then their concatenation,
      // then a string) would cost several hundred.
      assert.ok(grownMb < 95, `node 3's peak RSS grew by ${grownMb.toFixed(0)} MB while a 100 MB line was discarded`);
    }
    await assertStillWorks(3, '100 MB line');
  });
});

test('a malformed JSON frame is answered with BAD_REQUEST and logged', { timeout: 60_000 }, async () => {
  await cluster.check(async () => {
    const mark = cluster.logLines(3).length;
    const conn = await RawConnection.open(3);
    await conn.write('{"type":"QUERY","id":"malformed","sql":}\n');
    await conn.waitFrame(errorWith('BAD_REQUEST', { reason: 'MALFORMED_JSON' }), 'an ERROR frame for the malformed JSON');
    const line = await expectEvent(3, 'bad-frame', { code: 'MALFORMED_JSON' }, conn.name, mark);
    assert.match(line.msg, /QUERY.*malformed/, 'the log line shows the start of the frame');
    conn.destroy();
    await assertStillWorks(3, 'malformed JSON');
  });
});

test('a request of an unknown type is answered with BAD_REQUEST and logged', { timeout: 60_000 }, async () => {
  await cluster.check(async () => {
    const mark = cluster.logLines(3).length;
    const conn = await RawConnection.open(3);
    await conn.send({ type: 'FROBNICATE', id: 'unknown-type' });
    await conn.waitFrame(errorWith('BAD_REQUEST', /unknown request type "FROBNICATE"/, 'unknown-type'), 'an ERROR frame for the unknown type');
    await expectEvent(3, 'request-refused', { reason: /unknown request type "FROBNICATE"/ }, conn.name, mark);
    // The connection stays usable.
    await conn.send({ type: 'QUERY', id: 'after-unknown', sql: 'SELECT 40 + 2' });
    const res = await conn.waitFrame((f) => f['type'] === 'RESULT' && f['id'] === 'after-unknown', 'a RESULT after the unknown type');
    assert.deepEqual((res['results'] as { rows: unknown[] }[])[0]!.rows, [[42]]);
    conn.destroy();
    await assertStillWorks(3, 'unknown request type');
  });
});

test('a peer message of an unknown type is dropped and logged', { timeout: 60_000 }, async () => {
  await cluster.check(async () => {
    const mark = cluster.logLines(2).length;
    const conn = await RawConnection.open(2);
    await conn.write(
      JSON.stringify({ type: 'HELLO', protocol: 1, cluster: cluster.clusterName, nodeId: 1 }) + '\n' + JSON.stringify({ type: 'NOT_A_TYPE', term: 1 }) + '\n',
    );
    await expectEvent(2, 'peer-accepted', { peer: 1 }, conn.name, mark);
    await expectEvent(2, 'peer-message-invalid', { from: 1, reason: /unknown message type 'NOT_A_TYPE'/ }, null, mark);
    conn.destroy();
    await assertStillWorks(2, 'unknown peer message type');
  });
});

test('a HELLO with a wrong cluster name (or an unknown node id) is refused and logged', { timeout: 60_000 }, async () => {
  await cluster.check(async () => {
    const mark = cluster.logLines(1).length;
    const conn = await RawConnection.open(1);
    await conn.send({ type: 'HELLO', protocol: 1, cluster: 'not-this-cluster', nodeId: 2 });
    await conn.waitFrame(errorWith('BAD_REQUEST', /peer connection refused/), 'an ERROR frame refusing the peer');
    await conn.waitClosed();
    await expectEvent(1, 'peer-refused', { reason: new RegExp(`cluster 'not-this-cluster' is not '${cluster.clusterName}'`) }, conn.name, mark);

    const conn2 = await RawConnection.open(1);
    await conn2.send({ type: 'HELLO', protocol: 1, cluster: cluster.clusterName, nodeId: 99 });
    await conn2.waitFrame(errorWith('BAD_REQUEST', /peer connection refused/), 'an ERROR frame refusing node 99');
    await conn2.waitClosed();
    await expectEvent(1, 'peer-refused', { reason: /unknown node id 99/ }, conn2.name, mark);
    await assertStillWorks(1, 'wrong HELLO');
  });
});

test('a REPLICATE whose entry does not match its MD5 is rejected, logged and never applied', { timeout: 60_000 }, async () => {
  await cluster.check(async () => {
    // Quiet cluster: node 1 holds the coordinator's whole log, whose last entry is of the current term.
    await assertStillWorks(1, 'before the forged REPLICATE');
    await cluster.waitCaughtUp([1, 2, 3], 3);
    const s1 = await cluster.status(1);
    assert.equal(s1.coordinator, 3);
    assert.equal(s1.lastIndex, s1.commitIndex);
    const index = s1.lastIndex + 1;
    const payload = encodeReplicatedCommand([{ sql: "INSERT INTO probe (label) VALUES ('forged')" }]);
    const wrongMd5 = createHash('md5').update(`${payload} (not this)`).digest('hex');
    const mark = cluster.logLines(1).length;
    const conn = await RawConnection.open(1);
    // Posing as the coordinator (node 3), in its term, right after node 1's last entry.
    await conn.write(
      JSON.stringify({ type: 'HELLO', protocol: 1, cluster: cluster.clusterName, nodeId: 3 }) +
        '\n' +
        JSON.stringify({
          type: 'REPLICATE',
          term: s1.term,
          prevIndex: s1.lastIndex,
          prevTerm: s1.term,
          entries: [{ index, term: s1.term, kind: 'command', requestId: 'forged-1', payload, md5: wrongMd5, chainHash: '0'.repeat(32) }],
          commitIndex: 0,
        }) +
        '\n',
    );
    const line = await expectEvent(1, 'checksum-mismatch', { from: 3, index, detail: /^MD5 mismatch/ }, null, mark);
    assert.match(line['detail'] as string, new RegExp(`entry says ${wrongMd5}`));
    conn.destroy();
    // The real coordinator goes on; node 1 gets the real entries and never the forged one.
    await assertStillWorks(1, 'forged REPLICATE');
    await cluster.waitCaughtUp([1, 2, 3], 3);
    for (const id of [1, 2, 3]) {
      assert.deepEqual(await cluster.query(id, "SELECT count(*) FROM probe WHERE label = 'forged'"), [[0]], `the forged entry is not on node ${id}`);
    }
  });
});

test('after all of it: same coordinator and term, identical tables, no node offline', { timeout: 60_000 }, async () => {
  await cluster.check(async () => {
    await sleep(cluster.heartbeatIntervalMs * 2);
    const leader = await cluster.waitForCoordinator(3);
    assert.equal(leader.term, term, 'no election was caused by bad input');
    await cluster.waitCaughtUp([1, 2, 3], 3);
    const dumps = await Promise.all([1, 2, 3].map((id) => cluster.dump(id, 'probe', 'id')));
    assert.equal(dumps[0]!.length, probes);
    assert.deepEqual(dumps[1], dumps[0]);
    assert.deepEqual(dumps[2], dumps[0]);
    for (const id of [1, 2, 3]) {
      assert.deepEqual(['peer-offline', 'stepped-down', 'election-started'].flatMap((type) => cluster.events(id, type, marks.get(id))).map((l) => l.msg), [], `node ${id} saw no peer go offline and no election`);
      assert.equal(cluster.proc(id)!.alive, true, `node ${id} is still running`);
    }
  });
});
