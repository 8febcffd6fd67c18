// Parsing `mysql://user[:password]@host[:port]/database` into the fields of a mysql storage entry.
import { redactUrl } from './redact.js';
import { hostProblem } from './hosts.js';
import { DATABASE_NAME_RE, DATABASE_NAME_RULE, DEFAULT_MYSQL_PORT, MAX_MYSQL_USER_CHARS, MAX_PASSWORD_CHARS } from './schema.js';

export const URL_EXAMPLE = 'mysql://user:password@host:3306/database';

export interface ParsedMysqlUrl {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  /** Null when the URL holds no password (then `passwordEnv` gives it). */
  readonly password: string | null;
  readonly database: string;
}

/** Parses `mysql://user[:password]@host[:port]/database`; a list of problems when it is not one. */
export function parseMysqlUrl(text: string): ParsedMysqlUrl | { readonly problems: readonly string[] } {
  const shown = JSON.stringify(redactUrl(text));
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return {
      problems: [
        `${shown} is not a valid URL; expected ${URL_EXAMPLE} (percent-encode special characters in the user and password, e.g. "@" as %40, "/" as %2F, ":" as %3A; the port must be 1-65535)`,
      ],
    };
  }
  if (url.protocol !== 'mysql:') {
    return { problems: [`expected a URL starting with mysql:// (also for MariaDB), got ${JSON.stringify(url.protocol)} in ${shown}`] };
  }
  const problems: string[] = [];
  let user = '';
  let password: string | null = null;
  let database = '';
  try {
    user = decodeURIComponent(url.username);
    password = url.password === '' ? null : decodeURIComponent(url.password);
    database = decodeURIComponent(url.pathname.replace(/^\//, ''));
  } catch {
    problems.push(`${shown} has an invalid percent-encoding ("%" must be followed by two hex digits; write a literal "%" as %25)`);
  }
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (host === '') problems.push(`${shown} has no host; expected ${URL_EXAMPLE}`);
  else {
    const problem = hostProblem(host, 'database');
    if (problem !== null) problems.push(`host ${problem}`);
  }
  const port = url.port === '' ? DEFAULT_MYSQL_PORT : Number(url.port);
  if (!Number.isInteger(port) || port < 1 || port > 65535) problems.push(`${shown} has port ${url.port}; expected 1-65535`);
  if (url.username === '') problems.push(`${shown} has no user; expected ${URL_EXAMPLE}`);
  else if (user.length > MAX_MYSQL_USER_CHARS || /[\u0000-\u001f\u007f]/.test(user)) {
    problems.push(`the user in ${shown} must be 1-${MAX_MYSQL_USER_CHARS} characters without control characters`);
  }
  if (password !== null && password.length > MAX_PASSWORD_CHARS) problems.push(`the password in the URL is longer than ${MAX_PASSWORD_CHARS} characters`);
  if (database === '') problems.push(`${shown} names no database; expected ${URL_EXAMPLE}`);
  else if (database !== '' && !DATABASE_NAME_RE.test(database)) {
    problems.push(`the database ${JSON.stringify(database)} in ${shown} is not ${DATABASE_NAME_RULE} (one path segment; names that need quoting are refused)`);
  }
  if (url.search !== '') problems.push(`options after "?" are not supported (${JSON.stringify(url.search)}); remove them`);
  if (url.hash !== '') problems.push(`a "#" fragment is not allowed in ${shown}; if it is part of the password, percent-encode it as %23`);
  if (problems.length > 0) return { problems };
  return { host, port, user, password, database };
}
