// Secrets out of anything printed: passwords in configs and in URLs (also malformed ones).
import { isRecord } from './raw.js';

/** What a password is replaced with by redactConfig / redactUrl. */
export const REDACTED = '<redacted>';

/** A string quoted in a message: anything that may carry `user:password@` loses the password. */
export function withoutCredentials(s: string): string {
  return s.includes('@') ? redactUrl(s) : s;
}

/**
 * `mysql://user:secret@host/db` -> `mysql://user:<redacted>@host/db`. Works on strings that are not
 * valid URLs too (everything between the first ':' of the user part and the last '@' is hidden), so
 * a mistyped URL can be quoted in an error message without its password.
 */
export function redactUrl(url: string): string {
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*:\/\/)([\s\S]*)$/.exec(url);
  if (scheme === null) return url.includes('@') ? REDACTED : url;
  const rest = scheme[2]!;
  const at = rest.lastIndexOf('@');
  if (at < 0) return url;
  const userinfo = rest.slice(0, at);
  const colon = userinfo.indexOf(':');
  if (colon < 0) return url;
  return `${scheme[1]}${userinfo.slice(0, colon)}:${REDACTED}${rest.slice(at)}`;
}

/**
 * A deep copy of a config (resolved or as written) with every `password` replaced by REDACTED and
 * the password inside every `url` hidden. Use it wherever a config, a node or a storage entry is
 * printed or logged. `passwordEnv` (a variable's name, not a secret) is kept.
 */
export function redactConfig<T>(config: T): T {
  return redactValue(config, undefined, 0) as T;
}

function redactValue(value: unknown, key: string | undefined, depth: number): unknown {
  if (key === 'password' && value !== undefined) return REDACTED;
  if (key === 'url' && typeof value === 'string') return redactUrl(value);
  if (depth > 32) return value; // configs are shallow; do not recurse forever on a cycle
  if (Array.isArray(value)) return value.map((v) => redactValue(v, undefined, depth + 1));
  if (isRecord(value)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = redactValue(v, k, depth + 1);
    return out;
  }
  return value;
}
