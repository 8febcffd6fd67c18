// The connection phase packets: HandshakeV10 (server greeting), HandshakeResponse41 (client),
// AuthSwitchRequest and AuthMoreData.
import { Capability, Charset, ServerStatus } from './constants.js';
import { PayloadReader, PayloadWriter, ProtocolError } from './wire.js';

export const AuthPlugin = {
  NATIVE: 'mysql_native_password',
  CACHING_SHA2: 'caching_sha2_password',
} as const;
export type AuthPlugin = (typeof AuthPlugin)[keyof typeof AuthPlugin];

export interface HandshakeV10 {
  readonly serverVersion: string;
  readonly connectionId: number;
  /** 20 bytes, none of them NUL. */
  readonly scramble: Buffer;
  readonly capabilities: number;
  readonly charset: number;
  readonly statusFlags: number;
  readonly authPlugin: string;
}

export function encodeHandshakeV10(h: HandshakeV10): Buffer {
  if (h.scramble.length !== 20) throw new RangeError(`scramble must be 20 bytes, got ${h.scramble.length}`);
  return new PayloadWriter(128)
    .u8(10)
    .nulString(h.serverVersion)
    .u32(h.connectionId)
    .bytes(h.scramble.subarray(0, 8))
    .u8(0)
    .u16(h.capabilities & 0xffff)
    .u8(h.charset)
    .u16(h.statusFlags)
    .u16((h.capabilities >>> 16) & 0xffff)
    .u8(h.scramble.length + 1)
    .zeros(10)
    .bytes(h.scramble.subarray(8))
    .u8(0)
    .nulString(h.authPlugin)
    .finish();
}

/** Decodes a server greeting (used by tests on captured packets). */
export function decodeHandshakeV10(payload: Buffer): HandshakeV10 {
  const r = new PayloadReader(payload);
  const protocol = r.u8('protocol version');
  if (protocol !== 10) throw new ProtocolError(`handshake protocol version ${protocol}, expected 10`);
  const serverVersion = r.nulString('server version');
  const connectionId = r.u32('connection id');
  const part1 = r.bytes(8, 'auth-plugin-data-part-1');
  r.skip(1, 'filler');
  const capLow = r.u16('capability flags (lower)');
  const charset = r.u8('character set');
  const statusFlags = r.u16('status flags');
  const capHigh = r.u16('capability flags (upper)');
  const capabilities = (capLow | (capHigh << 16)) >>> 0;
  const dataLen = r.u8('auth-plugin-data length');
  r.skip(10, 'reserved');
  const part2Len = Math.max(13, dataLen - 8);
  const part2 = r.bytes(part2Len, 'auth-plugin-data-part-2');
  const scramble = Buffer.concat([part1, part2.subarray(0, part2Len - 1)]);
  const authPlugin = capabilities & Capability.PLUGIN_AUTH ? r.nulOrEofString('auth plugin name') : '';
  return { serverVersion, connectionId, scramble, capabilities, charset, statusFlags, authPlugin };
}

export interface HandshakeResponse41 {
  readonly capabilities: number;
  readonly maxPacketBytes: number;
  readonly charset: number;
  readonly user: string;
  readonly authResponse: Buffer;
  /** null when the client did not send CONNECT_WITH_DB or sent an empty name. */
  readonly database: string | null;
  /** '' when the client did not say (no CLIENT_PLUGIN_AUTH). */
  readonly authPlugin: string;
  readonly attributes: ReadonlyMap<string, string>;
}

/** Bounds on what a client may send in its handshake response. */
export const HANDSHAKE_LIMITS = {
  maxUserBytes: 256,
  maxDatabaseBytes: 256,
  maxAuthResponseBytes: 1024,
  maxAttributes: 64,
} as const;

export function decodeHandshakeResponse41(payload: Buffer): HandshakeResponse41 {
  const r = new PayloadReader(payload);
  if (payload.length < 4) throw new ProtocolError('malformed handshake response: shorter than 4 bytes', 1043, '08S01', false);
  const capabilities = r.u32('client capability flags') >>> 0;
  if ((capabilities & Capability.PROTOCOL_41) === 0) {
    throw new ProtocolError('handshake refused: the client does not speak protocol 4.1 (CLIENT_PROTOCOL_41)', 1043, '08S01', false);
  }
  if (capabilities & Capability.SSL && payload.length === 32) {
    throw new ProtocolError('SSL/TLS is not offered by this server: connect without TLS (e.g. --ssl=0 / ssl-mode=DISABLED)', 1043, '08S01', false);
  }
  const maxPacketBytes = r.u32('max packet size');
  const charset = r.u8('character set');
  r.skip(23, 'filler');
  const userBytes = r.nulBytes('user name');
  if (userBytes.length > HANDSHAKE_LIMITS.maxUserBytes) throw new ProtocolError(`user name longer than ${HANDSHAKE_LIMITS.maxUserBytes} bytes`, 1043, '08S01', false);
  const user = userBytes.toString('utf8');
  let authResponse: Buffer;
  if (capabilities & Capability.PLUGIN_AUTH_LENENC_CLIENT_DATA) authResponse = r.lenencBytes('auth response (length-encoded)');
  else if (capabilities & Capability.SECURE_CONNECTION) authResponse = r.bytes(r.u8('auth response length'), 'auth response');
  else authResponse = r.nulBytes('auth response (NUL-terminated)');
  if (authResponse.length > HANDSHAKE_LIMITS.maxAuthResponseBytes) throw new ProtocolError(`auth response longer than ${HANDSHAKE_LIMITS.maxAuthResponseBytes} bytes`, 1043, '08S01', false);
  let database: string | null = null;
  if (capabilities & Capability.CONNECT_WITH_DB && !r.atEnd()) {
    const db = r.nulOrEofString('database');
    if (Buffer.byteLength(db) > HANDSHAKE_LIMITS.maxDatabaseBytes) throw new ProtocolError(`database name longer than ${HANDSHAKE_LIMITS.maxDatabaseBytes} bytes`, 1043, '08S01', false);
    database = db === '' ? null : db;
  }
  let authPlugin = '';
  if (capabilities & Capability.PLUGIN_AUTH && !r.atEnd()) authPlugin = r.nulOrEofString('auth plugin name');
  const attributes = new Map<string, string>();
  if (capabilities & Capability.CONNECT_ATTRS && !r.atEnd()) {
    const attrs = new PayloadReader(r.lenencBytes('connection attributes'));
    while (!attrs.atEnd()) {
      if (attributes.size >= HANDSHAKE_LIMITS.maxAttributes) throw new ProtocolError(`more than ${HANDSHAKE_LIMITS.maxAttributes} connection attributes`, 1043, '08S01', false);
      const key = attrs.lenencString('connection attribute name');
      attributes.set(key, attrs.lenencString(`connection attribute '${key}' value`));
    }
  }
  return { capabilities, maxPacketBytes, charset, user, authResponse, database, authPlugin, attributes };
}

/** Builds a HandshakeResponse41 (tests use it to act as a client). */
export function encodeHandshakeResponse41(h: HandshakeResponse41): Buffer {
  const w = new PayloadWriter(128).u32(h.capabilities).u32(h.maxPacketBytes).u8(h.charset).zeros(23).nulString(h.user);
  if (h.capabilities & Capability.PLUGIN_AUTH_LENENC_CLIENT_DATA) w.lenencBytes(h.authResponse);
  else w.u8(h.authResponse.length).bytes(h.authResponse);
  if (h.capabilities & Capability.CONNECT_WITH_DB) w.nulString(h.database ?? '');
  if (h.capabilities & Capability.PLUGIN_AUTH) w.nulString(h.authPlugin);
  if (h.capabilities & Capability.CONNECT_ATTRS) {
    const a = new PayloadWriter();
    for (const [k, v] of h.attributes) a.lenencString(k).lenencString(v);
    w.lenencBytes(a.finish());
  }
  return w.finish();
}

export function encodeAuthSwitchRequest(plugin: string, scramble: Buffer): Buffer {
  return new PayloadWriter(64).u8(0xfe).nulString(plugin).bytes(scramble).u8(0).finish();
}

/** AuthMoreData: 0x01 then the data (caching_sha2_password fast-auth success is 0x03). */
export function encodeAuthMoreData(data: Buffer): Buffer {
  return new PayloadWriter(8).u8(0x01).bytes(data).finish();
}

export const DEFAULT_HANDSHAKE_STATUS = ServerStatus.AUTOCOMMIT;
export const DEFAULT_HANDSHAKE_CHARSET = Charset.UTF8MB4;

/**
 * The version clients see. A MySQL 8.0 number: mysql2 and libmariadb then speak plain MySQL
 * protocol (a '5.5.5-' prefix or 'MariaDB' in it would make them expect MariaDB extensions).
 */
export const SERVER_VERSION = '8.0.35-replisql';
