// Capture tool (not a test): a TCP relay between a real MySQL client and a real MariaDB server that
// records every protocol packet in both directions, so codec tests can use real bytes as fixtures.
//
//   node --import tsx test/mysql-protocol/capture-relay.ts <listenPort> <upstreamHost:port> <out.jsonl>
//
// Each line of the output: { "dir": "c2s" | "s2c", "seq": n, "hex": "<payload hex>" } (the 4-byte
// packet header is not stored; `seq` is its sequence id). Point a client at 127.0.0.1:<listenPort>.
import { appendFileSync, writeFileSync } from 'node:fs';
import { createServer, connect, type Socket } from 'node:net';

const [portArg, upstreamArg, outPath] = process.argv.slice(2);
if (portArg === undefined || upstreamArg === undefined || outPath === undefined) {
  console.error('usage: capture-relay.ts <listenPort> <upstreamHost:port> <out.jsonl>');
  process.exit(2);
}
const [upHost, upPort] = upstreamArg.split(':');
writeFileSync(outPath, '');

function recorder(dir: 'c2s' | 's2c', conn: number): (chunk: Buffer) => void {
  let pending = Buffer.alloc(0);
  return (chunk) => {
    pending = Buffer.concat([pending, chunk]);
    while (pending.length >= 4) {
      const len = pending.readUIntLE(0, 3);
      if (pending.length < 4 + len) break;
      const seq = pending[3];
      const hex = pending.subarray(4, 4 + len).toString('hex');
      appendFileSync(outPath!, JSON.stringify({ conn, dir, seq, hex }) + '\n');
      pending = pending.subarray(4 + len);
    }
  };
}

let nextConn = 1;
createServer((client: Socket) => {
  const id = nextConn++;
  const server = connect(Number(upPort), upHost);
  const c2s = recorder('c2s', id);
  const s2c = recorder('s2c', id);
  client.on('data', (d) => { c2s(d); server.write(d); });
  server.on('data', (d) => { s2c(d); client.write(d); });
  client.on('close', () => server.destroy());
  server.on('close', () => client.destroy());
  client.on('error', () => server.destroy());
  server.on('error', () => client.destroy());
}).listen(Number(portArg), '127.0.0.1', () => console.error(`relay on ${portArg} -> ${upstreamArg}`));
