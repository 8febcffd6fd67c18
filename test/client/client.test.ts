import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ReplisqlClient,
  ClientConnectionError,
  parseEndpoints,
  parseEndpoint,
} from '../../src/client/client.js';
import { ReplisqlError } from '../../src/errors.js';
import { startFakeServer, defaultHandler, closedPort, SAMPLE_STATUS, type Request } from './fake-server.js';

const queries = (reqs: readonly Request[]) => reqs.filter((r) => r.type === 'QUERY');

async function rejectsWith(p: Promise<unknown>, check: (e: unknown) => void): Promise<void> {
  try {
    await p;
  } catch (err) {
    check(err);
    return;
  }
  assert.fail('expected the promise to reject');
}

// ---------------------------------------------------------------- endpoints

test('parseEndpoints normalises a list and explains bad entries', () => {
  assert.deepEqual(parseEndpoints('127.0.0.1:7001, node2:7002,[::1]:7003'), ['127.0.0.1:7001', 'node2:7002', '[::1]:7003']);
  assert.deepEqual(parseEndpoints('a:1,a:1'), ['a:1']);
  assert.deepEqual(parseEndpoint('[::1]:7003'), { host: '::1', port: 7003 });
  assert.throws(() => parseEndpoints(''), /no endpoint given; expected host:port/);
  assert.throws(() => parseEndpoints('a:1,,b:2'), /empty endpoint at position 2/);
  assert.throws(() => parseEndpoints('localhost'), /"localhost" has no port; expected host:port, e.g. localhost:7001/);
  assert.throws(() => parseEndpoints('h:70000'), /port must be an integer between 1 and 65535, got "70000"/);
  assert.throws(() => parseEndpoints('h:abc'), /got "abc"/);
  assert.throws(() => parseEndpoints('::1:7001'), /IPv6 addresses in brackets/);
  assert.throws(() => parseEndpoints(':7001'), /has no host/);
  assert.throws(() => parseEndpoints('a b:1'), /not a valid host name/);
});

// ---------------------------------------------------------------- basic protocol

test('query returns one result per statement; status and ping parse', async () => {
  const srv = await startFakeServer();
  const client = await ReplisqlClient.connect([srv.endpoint]);
  try {
    const results = await client.query('INSERT INTO t VALUES (1); SELECT * FROM t;', []);
    assert.equal(results.length, 2);
    assert.deepEqual(results[0], { columns: [], rows: [], affectedRows: 1, lastInsertId: 1 });
    assert.deepEqual(results[1], { columns: ['id', 'name'], rows: [[1, 'alice'], [2, null]], affectedRows: 0, lastInsertId: null });

    const q = queries(srv.requests)[0]!;
    assert.match(q.id, /^[0-9a-f-]{36}$/, 'request id is a UUID');
    assert.deepEqual(q.params, []);

    const status = await client.status();
    assert.deepEqual(status, SAMPLE_STATUS);
    assert.equal(typeof (await client.ping()), 'number');
  } finally {
    await client.close();
    await srv.close();
  }
});

test('a read level given to query travels as the frame\'s "consistency" field, and only then', async () => {
  const srv = await startFakeServer();
  const client = await ReplisqlClient.connect([srv.endpoint]);
  try {
    await client.query('SELECT * FROM t', [], { consistency: 'linearizable' });
    await client.query('SELECT * FROM t');
    const [withLevel, without] = queries(srv.requests);
    assert.equal(withLevel!['consistency'], 'linearizable');
    assert.equal('consistency' in without!, false);
  } finally {
    await client.close();
    await srv.close();
  }
});

test('params are sent as given and unrepresentable params are refused before sending', async () => {
  const srv = await startFakeServer();
  const client = await ReplisqlClient.connect([srv.endpoint]);
  try {
    await client.query('INSERT INTO t VALUES (?, ?, ?, ?)', ['a', 1.5, true, null]);
    assert.deepEqual(queries(srv.requests)[0]!.params, ['a', 1.5, true, null]);
    await rejectsWith(client.query('SELECT ?', [Number.NaN]), (e) => {
      assert.ok(e instanceof ReplisqlError);
      assert.equal(e.code, 'BAD_REQUEST');
      assert.match(e.message, /params\[0\]/);
    });
    await rejectsWith(client.query('SELECT ?', [{} as unknown as string]), (e) => assert.match((e as Error).message, /params\[0\]/));
    assert.equal(queries(srv.requests).length, 1);
  } finally {
    await client.close();
    await srv.close();
  }
});

test('requests are pipelined on one connection and answers correlated by id, in any order', async () => {
  const held: { req: Request; send: (f: unknown) => void }[] = [];
  const srv = await startFakeServer((req, ctx) => {
    if (req.type !== 'QUERY') return defaultHandler(req, ctx);
    held.push({ req, send: ctx.send });
    if (held.length === 3) {
      // Answer in reverse order, each with a result naming its SQL.
      for (const h of [...held].reverse()) {
        h.send({
          type: 'RESULT',
          id: h.req.id,
          results: [{ columns: ['sql'], rows: [[h.req.sql]], affectedRows: 0, lastInsertId: null }],
        });
      }
    }
    return undefined;
  });
  const client = await ReplisqlClient.connect([srv.endpoint]);
  try {
    const answers = await Promise.all([client.query('SELECT 1'), client.query('SELECT 2'), client.query('SELECT 3')]);
    assert.deepEqual(
      answers.map((r) => r[0]!.rows[0]![0]),
      ['SELECT 1', 'SELECT 2', 'SELECT 3'],
    );
    assert.equal(srv.connections, 1, 'all three on one connection');
    assert.equal(new Set(held.map((h) => h.req.id)).size, 3, 'distinct ids');
  } finally {
    await client.close();
    await srv.close();
  }
});

// ---------------------------------------------------------------- failover

test('connect skips a refused endpoint and uses the next one', async () => {
  const dead = await closedPort();
  const srv = await startFakeServer();
  const client = await ReplisqlClient.connect([`127.0.0.1:${dead}`, srv.endpoint]);
  try {
    assert.equal(client.endpoint, srv.endpoint);
    const r = await client.queryDetailed('SELECT 1');
    assert.equal(r.endpoint, srv.endpoint);
  } finally {
    await client.close();
    await srv.close();
  }
});

test('connect fails with every endpoint\'s reason when none answers', async () => {
  const a = await closedPort();
  const b = await closedPort();
  await rejectsWith(ReplisqlClient.connect([`127.0.0.1:${a}`, `127.0.0.1:${b}`], { connectTimeoutMs: 1000 }), (e) => {
    assert.ok(e instanceof ClientConnectionError);
    assert.equal(e.code, 'UNAVAILABLE');
    assert.match(e.message, new RegExp(`127.0.0.1:${a}: ECONNREFUSED; 127.0.0.1:${b}: ECONNREFUSED`));
    assert.equal(e.attempts.length, 2);
  });
});

test('a connection reset after sending fails over to the next endpoint and re-sends the SAME id; the write is applied once', async () => {
  // Node A applies the write, then dies before answering.
  const applied = new Map<string, number>();
  const apply = (id: string) => applied.set(id, (applied.get(id) ?? 0) + 1);
  const a = await startFakeServer((req, ctx) => {
    if (req.type !== 'QUERY') return defaultHandler(req, ctx);
    apply(req.id);
    ctx.socket.destroy();
    return undefined;
  });
  // Node B shares the (replicated) dedup state: it answers a known id as a duplicate.
  const b = await startFakeServer((req, ctx) => {
    if (req.type !== 'QUERY') return defaultHandler(req, ctx);
    const duplicate = applied.has(req.id);
    if (!duplicate) apply(req.id);
    return { type: 'RESULT', id: req.id, results: [{ columns: [], rows: [], affectedRows: 1, lastInsertId: 9 }], duplicate };
  });
  const client = await ReplisqlClient.connect([a.endpoint, b.endpoint]);
  try {
    const r = await client.queryDetailed('INSERT INTO t VALUES (1)');
    assert.equal(r.endpoint, b.endpoint);
    assert.equal(r.duplicate, true);
    const idA = queries(a.requests)[0]!.id;
    const idB = queries(b.requests)[0]!.id;
    assert.equal(idA, idB, 'the retry carries the same id');
    assert.equal(r.id, idA);
    assert.deepEqual([...applied.values()], [1], 'applied exactly once');
  } finally {
    await client.close();
    await a.close();
    await b.close();
  }
});

test('when the connected node goes away, requests fail over on the next call (ECONNREFUSED on reconnect included)', async () => {
  const a = await startFakeServer();
  const b = await startFakeServer();
  const client = await ReplisqlClient.connect([a.endpoint, b.endpoint]);
  try {
    await client.query('SELECT 1');
    await a.close(); // refuses from now on
    const r = await client.queryDetailed('SELECT 2');
    assert.equal(r.endpoint, b.endpoint);
    assert.equal(queries(b.requests).length, 1);
  } finally {
    await client.close();
    await b.close();
  }
});

test('a silent (hung) node is detected by the liveness probe and the request moves on with the same id', async () => {
  const a = await startFakeServer(() => undefined); // accepts, never answers anything
  const b = await startFakeServer();
  const client = await ReplisqlClient.connect([a.endpoint, b.endpoint], { livenessTimeoutMs: 300, timeoutMs: 5000 });
  try {
    const started = Date.now();
    const r = await client.queryDetailed('INSERT INTO t VALUES (1)');
    assert.equal(r.endpoint, b.endpoint);
    assert.ok(Date.now() - started < 3000);
    assert.equal(queries(a.requests)[0]!.id, queries(b.requests)[0]!.id);
    assert.ok(a.requests.some((q) => q.type === 'PING'), 'a PING was sent and never answered');
  } finally {
    await client.close();
    await a.close();
    await b.close();
  }
});

test('a slow node that answers probes is not abandoned', async () => {
  const srv = await startFakeServer((req, ctx) => {
    if (req.type !== 'QUERY') return defaultHandler(req, ctx);
    setTimeout(() => ctx.send(defaultHandler(req, ctx)), 700); // slower than the liveness timeout
    return undefined;
  });
  const client = await ReplisqlClient.connect([srv.endpoint], { livenessTimeoutMs: 300 });
  try {
    await client.query('SELECT 1');
    assert.equal(srv.connections, 1);
    assert.equal(queries(srv.requests).length, 1);
    assert.ok(srv.requests.some((q) => q.type === 'PING' && q.id.startsWith('probe-')), 'liveness probes were sent and answered');
  } finally {
    await client.close();
    await srv.close();
  }
});

test('retries are bounded: after `retries` re-sends a write is reported as UNKNOWN_OUTCOME, with its id', async () => {
  const srv = await startFakeServer((req, ctx) => {
    if (req.type === 'QUERY') ctx.socket.destroy();
    else return defaultHandler(req, ctx);
    return undefined;
  });
  const client = await ReplisqlClient.connect([srv.endpoint], { retries: 2 });
  try {
    await rejectsWith(client.query('INSERT INTO t VALUES (1)'), (e) => {
      assert.ok(e instanceof ReplisqlError);
      assert.equal(e.code, 'UNKNOWN_OUTCOME');
      assert.match(e.message, /sent 3 time\(s\)/);
      assert.match(e.message, /may or may not have been applied/);
      assert.match(e.message, new RegExp(queries(srv.requests)[0]!.id));
    });
    assert.equal(queries(srv.requests).length, 3);
    assert.equal(new Set(queries(srv.requests).map((q) => q.id)).size, 1);
  } finally {
    await client.close();
    await srv.close();
  }
});

test('a request that gets no answer at all ends at the deadline as UNKNOWN_OUTCOME', async () => {
  const srv = await startFakeServer((req, ctx) => (req.type === 'QUERY' ? undefined : defaultHandler(req, ctx)));
  const client = await ReplisqlClient.connect([srv.endpoint], { timeoutMs: 300 });
  try {
    await rejectsWith(client.query('INSERT INTO t VALUES (1)'), (e) => {
      assert.equal((e as ReplisqlError).code, 'UNKNOWN_OUTCOME');
      assert.match((e as Error).message, /no answer within 300 ms/);
    });
  } finally {
    await client.close();
    await srv.close();
  }
});

// ---------------------------------------------------------------- error codes

test('NO_COORDINATOR is retried with backoff (same id) until a coordinator answers', async () => {
  let refusals = 0;
  const srv = await startFakeServer((req, ctx) => {
    if (req.type === 'QUERY' && refusals < 3) {
      refusals++;
      return { type: 'ERROR', id: req.id, error: { code: 'NO_COORDINATOR', message: 'election in progress' } };
    }
    return defaultHandler(req, ctx);
  });
  const client = await ReplisqlClient.connect([srv.endpoint]);
  try {
    const r = await client.query('INSERT INTO t VALUES (1)');
    assert.equal(r[0]!.affectedRows, 1);
    const qs = queries(srv.requests);
    assert.equal(qs.length, 4);
    assert.equal(new Set(qs.map((q) => q.id)).size, 1, 'same id on every retry');
    assert.equal(srv.applied.length, 1);
  } finally {
    await client.close();
    await srv.close();
  }
});

test('NO_COORDINATOR that outlasts the deadline is surfaced', async () => {
  const srv = await startFakeServer((req, ctx) =>
    req.type === 'QUERY'
      ? { type: 'ERROR', id: req.id, error: { code: 'NO_COORDINATOR', message: 'election in progress' } }
      : defaultHandler(req, ctx),
  );
  const client = await ReplisqlClient.connect([srv.endpoint], { timeoutMs: 400 });
  try {
    await rejectsWith(client.query('INSERT INTO t VALUES (1)'), (e) => {
      assert.ok(e instanceof ReplisqlError);
      assert.ok(['NO_COORDINATOR', 'UNKNOWN_OUTCOME'].includes(e.code), e.code);
    });
    assert.ok(queries(srv.requests).length >= 2, 'it was retried');
  } finally {
    await client.close();
    await srv.close();
  }
});

test('NO_QUORUM is surfaced at once with its coordinator hint, not retried', async () => {
  const srv = await startFakeServer();
  const client = await ReplisqlClient.connect([srv.endpoint]);
  try {
    await rejectsWith(client.query('INSERT NO_QUORUM'), (e) => {
      assert.ok(e instanceof ReplisqlError);
      assert.equal(e.code, 'NO_QUORUM');
      assert.equal(e.message, 'only 1 of 3 nodes reachable');
      assert.equal(e.coordinatorHint, 3);
    });
    assert.equal(queries(srv.requests).length, 1);
    await rejectsWith(client.query('SYNTAX'), (e) => {
      assert.equal((e as ReplisqlError).code, 'SQL_ERROR');
      assert.deepEqual((e as ReplisqlError).sql, { engineCode: 'SQLITE_ERROR' }, 'the database detail travels as fields');
      assert.equal((e as Error).message, 'near "SYNTAX": syntax error');
    });
    assert.equal(queries(srv.requests).length, 2);
  } finally {
    await client.close();
    await srv.close();
  }
});

test('an unknown error code from the node becomes INTERNAL and keeps the original code in the message', async () => {
  const srv = await startFakeServer((req, ctx) =>
    req.type === 'QUERY' ? { type: 'ERROR', id: req.id, error: { code: 'WEIRD', message: 'x' } } : defaultHandler(req, ctx),
  );
  const client = await ReplisqlClient.connect([srv.endpoint]);
  try {
    await rejectsWith(client.query('SELECT 1'), (e) => {
      assert.equal((e as ReplisqlError).code, 'INTERNAL');
      assert.equal((e as Error).message, "the node reported error code 'WEIRD', which this client does not know: x");
    });
  } finally {
    await client.close();
    await srv.close();
  }
});

// ---------------------------------------------------------------- malformed responses

test('a well-correlated but malformed RESULT is reported, not trusted', async () => {
  const bad: unknown[] = [
    { results: 'nope' },
    { results: [{ columns: ['a'], rows: [[1, 2]], affectedRows: 0, lastInsertId: null }] }, // row wider than columns
    { results: [{ columns: [], rows: [], affectedRows: -1, lastInsertId: null }] },
  ];
  let i = 0;
  const srv = await startFakeServer((req, ctx) =>
    req.type === 'QUERY' ? { type: 'RESULT', id: req.id, ...(bad[i++] as object) } : defaultHandler(req, ctx),
  );
  const client = await ReplisqlClient.connect([srv.endpoint]);
  try {
    for (const expected of [/results: /, /different number of values/, /affectedRows/]) {
      await rejectsWith(client.query('INSERT INTO t VALUES (1)'), (e) => {
        assert.ok(e instanceof ReplisqlError);
        assert.equal(e.code, 'UNKNOWN_OUTCOME', 'a write whose answer is unreadable has an unknown outcome');
        assert.match(e.message, /unreadable response from 127\.0\.0\.1:\d+/);
        assert.match(e.message, expected);
      });
    }
    // The connection is still usable afterwards.
    assert.equal((await client.status()).nodeId, 1);
  } finally {
    await client.close();
    await srv.close();
  }
});

test('a wrong frame type for the request is reported', async () => {
  const srv = await startFakeServer((req, ctx) => (req.type === 'STATUS' ? { type: 'PONG', id: req.id } : defaultHandler(req, ctx)));
  const client = await ReplisqlClient.connect([srv.endpoint]);
  try {
    await rejectsWith(client.status(), (e) => {
      assert.equal((e as ReplisqlError).code, 'INTERNAL');
      assert.match((e as Error).message, /expected a STATUS or ERROR frame, got type "PONG"/);
    });
  } finally {
    await client.close();
    await srv.close();
  }
});

test('a non-JSON line with one request waiting is that request\'s error; the connection survives', async () => {
  let first = true;
  const srv = await startFakeServer((req, ctx) => {
    if (req.type === 'QUERY' && first) {
      first = false;
      ctx.sendRaw('this is not json\n');
      return undefined;
    }
    return defaultHandler(req, ctx);
  });
  const client = await ReplisqlClient.connect([srv.endpoint]);
  try {
    await rejectsWith(client.query('SELECT 1'), (e) => assert.match((e as Error).message, /malformed JSON frame/));
    assert.equal((await client.query('SELECT 2')).length, 1);
    assert.equal(srv.connections, 1);
  } finally {
    await client.close();
    await srv.close();
  }
});

test('garbage with several requests waiting drops the connection and re-sends them (same ids)', async () => {
  let garbageSent = false;
  const waiting: { req: Request; send: (f: unknown) => void }[] = [];
  const srv = await startFakeServer((req, ctx) => {
    if (req.type !== 'QUERY') return defaultHandler(req, ctx);
    if (!garbageSent) {
      waiting.push({ req, send: ctx.send });
      if (waiting.length === 2) {
        garbageSent = true;
        ctx.sendRaw('{"broken": \n');
      }
      return undefined;
    }
    return defaultHandler(req, ctx);
  });
  const client = await ReplisqlClient.connect([srv.endpoint]);
  try {
    const [r1, r2] = await Promise.all([client.query('SELECT 1'), client.query('SELECT 2')]);
    assert.equal(r1.length, 1);
    assert.equal(r2.length, 1);
    assert.equal(srv.connections, 2, 'reconnected once');
    const ids = queries(srv.requests).map((q) => q.id);
    assert.equal(ids.length, 4);
    assert.deepEqual(new Set(ids.slice(2)), new Set(ids.slice(0, 2)), 're-sent with the same ids');
  } finally {
    await client.close();
    await srv.close();
  }
});

test('an id:null ERROR from the node answers the only waiting request; late or unknown ids are ignored', async () => {
  const srv = await startFakeServer((req, ctx) => {
    if (req.type !== 'QUERY') return defaultHandler(req, ctx);
    ctx.send({ type: 'RESULT', id: 'someone-else', results: [] });
    return { type: 'ERROR', id: null, error: { code: 'BAD_REQUEST', message: 'FRAME_TOO_LARGE: frame of 99 bytes exceeds maxFrameBytes' } };
  });
  const client = await ReplisqlClient.connect([srv.endpoint]);
  try {
    await rejectsWith(client.query('SELECT 1'), (e) => {
      assert.equal((e as ReplisqlError).code, 'BAD_REQUEST');
      assert.match((e as Error).message, /FRAME_TOO_LARGE/);
    });
  } finally {
    await client.close();
    await srv.close();
  }
});

test('a response over maxFrameBytes is refused without buffering it', async () => {
  const srv = await startFakeServer((req, ctx) =>
    req.type === 'QUERY'
      ? { type: 'RESULT', id: req.id, results: [{ columns: ['x'], rows: [['y'.repeat(5000)]], affectedRows: 0, lastInsertId: null }] }
      : defaultHandler(req, ctx),
  );
  const client = await ReplisqlClient.connect([srv.endpoint], { maxFrameBytes: 2048 });
  try {
    await rejectsWith(client.query('SELECT big'), (e) => assert.match((e as Error).message, /exceeds maxFrameBytes=2048/));
    await rejectsWith(client.query(`SELECT '${'z'.repeat(3000)}'`), (e) => {
      assert.equal((e as ReplisqlError).code, 'BAD_REQUEST');
      assert.match((e as Error).message, /request of \d+ bytes exceeds maxFrameBytes=2048/);
    });
  } finally {
    await client.close();
    await srv.close();
  }
});

// ---------------------------------------------------------------- ids and lifecycle

test('a caller-supplied id is used as the idempotency key', async () => {
  const srv = await startFakeServer();
  const client = await ReplisqlClient.connect([srv.endpoint]);
  try {
    const first = await client.queryDetailed('INSERT INTO t VALUES (1)', [], { id: 'order-42' });
    const again = await client.queryDetailed('INSERT INTO t VALUES (1)', [], { id: 'order-42' });
    assert.equal(first.duplicate, false);
    assert.equal(again.duplicate, true);
    assert.deepEqual(srv.applied, ['order-42']);
    await rejectsWith(client.query('SELECT 1', [], { id: 'has space' }), (e) => assert.equal((e as ReplisqlError).code, 'BAD_REQUEST'));
  } finally {
    await client.close();
    await srv.close();
  }
});

test('close() fails outstanding requests and later calls', async () => {
  const srv = await startFakeServer((req, ctx) => (req.type === 'QUERY' ? undefined : defaultHandler(req, ctx)));
  const client = await ReplisqlClient.connect([srv.endpoint]);
  const pending = rejectsWith(client.query('SELECT 1'), (e) => assert.match((e as Error).message, /client closed/));
  await new Promise((r) => setTimeout(r, 50));
  await client.close();
  await pending;
  await rejectsWith(client.query('SELECT 2'), (e) => assert.match((e as Error).message, /client closed/));
  await srv.close();
});

test('the first frame on a new connection is a PING, so the node sorts it as a client at once', async () => {
  const srv = await startFakeServer();
  const client = await ReplisqlClient.connect([srv.endpoint]);
  try {
    await client.query('SELECT 1');
    assert.equal(srv.requests[0]!.type, 'PING');
  } finally {
    await client.close();
    await srv.close();
  }
});
