// zod issues as messages `<field path>: <what is wrong>, got <value>`, with unknown fields given a
// suggestion and secret values never shown.
import type { z } from 'zod';
import { STORAGE_ENGINES } from './schema.js';
import { knownKeysAt, otherEngineHint, suggestName } from './suggest.js';
import { redactUrl, withoutCredentials } from './redact.js';
import { isRecord } from './raw.js';

function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else out += out === '' ? String(p) : `.${String(p)}`;
  }
  return out === '' ? '(top level)' : out;
}

export function preview(value: unknown): string {
  let text: string;
  try {
    text = typeof value === 'string' ? JSON.stringify(withoutCredentials(value)) : (JSON.stringify(value) ?? String(value));
  } catch {
    text = String(value);
  }
  if (text.length > 60) text = `${text.slice(0, 57)}...`;
  if (typeof value === 'string') return `${text} (a string)`;
  if (Array.isArray(value)) return `${text} (an array)`;
  return text;
}

/** Fields whose values are secret (or may hold one) and must never appear in a message. */
function secretPreview(path: readonly PropertyKey[], value: unknown): string | null {
  const last = path[path.length - 1];
  if (last === 'password') {
    return typeof value === 'string' ? `a string of ${value.length} characters (not shown)` : `a value of type ${value === null ? 'null' : typeof value} (not shown)`;
  }
  if (last === 'url' && typeof value === 'string') return preview(redactUrl(value));
  return null;
}

export function zodIssueMessages(issues: readonly z.core.$ZodIssue[], raw: unknown): string[] {
  const out: string[] = [];
  for (const issue of issues) {
    const where = formatPath(issue.path);
    const input = (issue as { input?: unknown }).input;
    switch (issue.code) {
      case 'unrecognized_keys': {
        const known = knownKeysAt(issue.path, raw);
        for (const key of issue.keys) {
          const prefix = issue.path.length === 0 ? '' : `${where}: `;
          const other = otherEngineHint(issue.path, key, raw);
          const hint = suggestName(key, known);
          out.push(
            `${prefix}unknown field '${key}'; ` +
              (other ?? (hint !== null ? `did you mean '${hint}'?` : `known fields: ${known.join(', ')}`)),
          );
        }
        break;
      }
      case 'invalid_union': {
        const disc = (issue as { discriminator?: string }).discriminator;
        if (disc !== undefined) {
          const got = isRecord(input) ? input[disc] : undefined;
          const options = STORAGE_ENGINES.map((e) => `"${e}"`).join(', ');
          out.push(
            got === undefined
              ? `${where}: missing; expected one of ${options}`
              : `${where}: expected one of ${options}, got ${preview(got)}` +
                  (typeof got === 'string' && /^(mariadb|mysql)$/i.test(got) ? ' (write "mysql", in lower case, for MySQL and MariaDB alike)' : ''),
          );
        } else {
          out.push(`${where}: ${issue.message}`);
        }
        break;
      }
      default: {
        if (input === undefined && issue.code === 'invalid_type') {
          out.push(`${where}: missing; ${issue.message}`);
        } else {
          out.push(`${where}: ${issue.message}, got ${secretPreview(issue.path, input) ?? preview(input)}`);
        }
      }
    }
  }
  return out;
}
