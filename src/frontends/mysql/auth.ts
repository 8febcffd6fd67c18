// Password verification for mysql_native_password and the caching_sha2_password fast path. The
// server knows each user's plaintext password (from its configuration), so it can compute what a
// client that knows the password must send for a given scramble, and compare in constant time.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { AuthPlugin } from './handshake.js';

export interface MysqlUser {
  readonly user: string;
  /** Plaintext; '' for no password. */
  readonly password: string;
}

/** 20 random printable ASCII bytes (no NUL: some clients read the scramble as a C string). */
export function newScramble(): Buffer {
  const raw = randomBytes(20);
  for (let i = 0; i < raw.length; i++) raw[i] = 0x21 + (raw[i]! % 94);
  return raw;
}

function sha1(...parts: Buffer[]): Buffer {
  const h = createHash('sha1');
  for (const p of parts) h.update(p);
  return h.digest();
}
function sha256(...parts: Buffer[]): Buffer {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
}
function xor(a: Buffer, b: Buffer): Buffer {
  const out = Buffer.allocUnsafe(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i]! ^ b[i % b.length]!;
  return out;
}

/** What a mysql_native_password client sends: SHA1(pw) XOR SHA1(scramble + SHA1(SHA1(pw))); empty for ''. */
export function nativePasswordToken(password: string, scramble: Buffer): Buffer {
  if (password === '') return Buffer.alloc(0);
  const stage1 = sha1(Buffer.from(password, 'utf8'));
  return xor(stage1, sha1(scramble, sha1(stage1)));
}

/** What a caching_sha2_password client sends: SHA256(pw) XOR SHA256(SHA256(SHA256(pw)) + scramble); empty for ''. */
export function cachingSha2Token(password: string, scramble: Buffer): Buffer {
  if (password === '') return Buffer.alloc(0);
  const p1 = sha256(Buffer.from(password, 'utf8'));
  return xor(p1, sha256(sha256(p1), scramble));
}

function constantTimeEqual(a: Buffer, b: Buffer): boolean {
  if (a.length !== b.length) {
    timingSafeEqual(a, a); // same work whether or not the lengths match
    return false;
  }
  return timingSafeEqual(a, b);
}

/**
 * Checks an auth response. An unknown user is checked against a random password so that the time
 * taken does not tell whether the user exists.
 */
export function verifyPassword(
  users: readonly MysqlUser[],
  user: string,
  plugin: AuthPlugin,
  scramble: Buffer,
  response: Buffer,
): boolean {
  const known = users.find((u) => u.user === user);
  const password = known?.password ?? randomBytes(16).toString('hex');
  // mysql_native_password clients may send a trailing NUL after an empty response.
  const resp = response.length === 1 && response[0] === 0 ? Buffer.alloc(0) : response;
  const expected = plugin === AuthPlugin.NATIVE ? nativePasswordToken(password, scramble) : cachingSha2Token(password, scramble);
  const ok = constantTimeEqual(resp, expected);
  return ok && known !== undefined;
}
