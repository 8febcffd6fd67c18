// A minimal MySQL client on a raw socket for the tests that must send what real clients never
// send (malformed or oversized packets, garbage, unusual commands).
import { connect, type Socket } from 'node:net';
import { nativePasswordToken } from '../../../src/frontends/mysql/auth.js';
import { Capability } from '../../../src/frontends/mysql/constants.js';
import { decodeHandshakeV10, encodeHandshakeResponse41, type HandshakeV10 } from '../../../src/frontends/mysql/handshake.js';
import { framePayload, PacketSplitter } from '../../../src/frontends/mysql/packet.js';

export const RAW_CLIENT_CAPS =
  Capability.LONG_PASSWORD | Capability.PROTOCOL_41 | Capability.SECURE_CONNECTION | Capability.PLUGIN_AUTH |
  Capability.CONNECT_WITH_DB | Capability.TRANSACTIONS | Capability.MULTI_RESULTS | Capability.MULTI_STATEMENTS;

export class RawClient {
  private readonly splitter = new PacketSplitter(1 << 30);
  private readonly packets: { payload: Buffer; seq: number }[] = [];
  private waiter: (() => void) | null = null;
  closed = false;
  greeting: HandshakeV10 | null = null;

  private constructor(readonly socket: Socket) {
    socket.on('data', (d) => {
      for (const ev of this.splitter.push(d)) if (ev.type === 'message') this.packets.push({ payload: ev.payload, seq: ev.lastSeq });
      this.waiter?.();
    });
    socket.on('close', () => {
      this.closed = true;
      this.waiter?.();
    });
    socket.on('error', () => undefined);
  }

  static open(port: number): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const s = connect(port, '127.0.0.1', () => resolve(new RawClient(s)));
      s.once('error', reject);
    });
  }

  /** Connects and logs in with mysql_native_password. */
  static async login(port: number, user = 'root', password = '', opts: { capabilities?: number; plugin?: string } = {}): Promise<RawClient> {
    const c = await RawClient.open(port);
    const g = await c.readGreeting();
    c.send(
      encodeHandshakeResponse41({
        capabilities: opts.capabilities ?? RAW_CLIENT_CAPS,
        maxPacketBytes: 1 << 24,
        charset: 45,
        user,
        authResponse: nativePasswordToken(password, g.scramble),
        database: 'test',
        authPlugin: opts.plugin ?? 'mysql_native_password',
        attributes: new Map(),
      }),
      1,
    );
    const ok = await c.next();
    if (ok.payload[0] !== 0x00) throw new Error(`login failed: ${ok.payload.toString('hex')}`);
    return c;
  }

  async readGreeting(): Promise<HandshakeV10> {
    this.greeting = decodeHandshakeV10((await this.next()).payload);
    return this.greeting;
  }

  send(payload: Buffer, seq = 0): void {
    for (const f of framePayload(payload, seq).frames) this.socket.write(f);
  }

  writeRaw(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  /** The next packet, or throws when the server closed the connection or nothing came in time. */
  async next(timeoutMs = 3000): Promise<{ payload: Buffer; seq: number }> {
    const deadline = Date.now() + timeoutMs;
    while (this.packets.length === 0) {
      if (this.closed) throw new Error('connection closed by the server');
      if (Date.now() > deadline) throw new Error('no packet in time');
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.max(1, deadline - Date.now()));
        this.waiter = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.waiter = null;
    }
    return this.packets.shift()!;
  }

  /** Resolves when the server has closed the connection. */
  async waitClosed(timeoutMs = 3000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed) {
      if (Date.now() > deadline) throw new Error('the server did not close the connection');
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  close(): void {
    this.socket.destroy();
  }
}
