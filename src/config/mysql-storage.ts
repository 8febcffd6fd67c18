// A mysql storage entry: the either/or rules zod cannot express (url or fields, exactly one password
// source) and its resolution to a ResolvedMysqlStorage.
import { DATABASE_NAME_RULE, DEFAULT_MYSQL_PORT, ENV_NAME_RE, MAX_PASSWORD_CHARS, MAX_URL_CHARS } from './schema.js';
import { parseMysqlUrl, URL_EXAMPLE } from './url.js';
import { hostProblem } from './hosts.js';
import { resolvePath } from './paths.js';
import type { ConfigEnv, ResolvedMysqlStorage } from './resolved.js';

/**
 * The either/or rules of a mysql storage entry and its resolution (URL parsed, port defaulted,
 * password read from the environment). Type errors of single fields are zod's: a field of the wrong
 * type is skipped here, neither reported twice nor called missing.
 */
export function resolveMysqlStorage(
  s: Record<string, unknown>,
  where: string,
  env: ConfigEnv,
  baseDir: string,
): { readonly problems: readonly string[]; readonly value: ResolvedMysqlStorage | null } {
  const problems: string[] = [];
  const str = (k: string): string | undefined => (typeof s[k] === 'string' ? (s[k] as string) : undefined);
  const present = (k: string): boolean => s[k] !== undefined;
  let valid = true; // false once a field is unusable (reported here or by zod)
  let urlFailed = false; // the URL is unusable, so whether it holds a password is unknown

  let host: string | undefined;
  let port: number | undefined;
  let user: string | undefined;
  let database: string | undefined;
  let literalPassword: string | undefined = str('password');
  let passwordSource: 'password' | 'url' | null = present('password') ? 'password' : null;

  if (present('url')) {
    const inUrl = ['host', 'port', 'user', 'database'].filter(present);
    if (present('password')) inUrl.push('password');
    if (inUrl.length > 0) {
      problems.push(
        `${where}: ${inUrl.map((k) => `"${k}"`).join(', ')} given together with "url"; give the connection either as "url" or as separate fields, not both` +
          (inUrl.includes('password') ? ' (to keep the password out of the URL, leave it out and use "passwordEnv")' : ''),
      );
      valid = false;
    }
    const url = str('url');
    if (url === undefined || url === '' || url.length > MAX_URL_CHARS) {
      valid = false;
      urlFailed = true;
    }
    else {
      const parsed = parseMysqlUrl(url);
      if ('problems' in parsed) {
        for (const p of parsed.problems) problems.push(`${where}.url: ${p}`);
        valid = false;
        urlFailed = true;
      } else {
        ({ host, port, user, database } = parsed);
        if (parsed.password !== null) {
          literalPassword = parsed.password;
          passwordSource = 'url';
        }
      }
    }
  } else {
    let hinted = false;
    const missing = (field: string, what: string): void => {
      problems.push(`${where}.${field}: missing; expected ${what}` + (hinted ? '' : ` (or give the whole connection as "url": "${URL_EXAMPLE}")`));
      hinted = true;
      valid = false;
    };
    if (!present('host')) missing('host', "the database server's host name or IP address (127.0.0.1 when it runs on the node's machine)");
    if (!present('user')) missing('user', 'the MySQL user name');
    if (!present('database')) missing('database', `the name of this node's database (${DATABASE_NAME_RULE})`);
    host = str('host');
    port = present('port') ? (typeof s.port === 'number' ? s.port : undefined) : DEFAULT_MYSQL_PORT;
    user = str('user');
    database = str('database');
    if (host !== undefined && host.length > 0 && host.length <= 253) {
      const problem = hostProblem(host, 'database');
      if (problem !== null) {
        problems.push(`${where}.host: ${problem}`);
        valid = false;
      }
    }
  }

  let password: string | undefined;
  if (present('passwordEnv')) {
    if (passwordSource !== null) {
      problems.push(
        `${where}: both ${passwordSource === 'url' ? 'a password in "url"' : '"password"'} and "passwordEnv" are given; keep exactly one ` +
          `("passwordEnv" keeps the secret out of the config file)`,
      );
      valid = false;
    } else {
      const name = str('passwordEnv');
      if (name !== undefined && ENV_NAME_RE.test(name)) {
        const value = env[name];
        if (value === undefined) {
          problems.push(
            `${where}.passwordEnv: environment variable ${name} is not set; set it to this node's database password in the environment of the node process ` +
              `(systemd: EnvironmentFile=, docker compose: environment:/.env) or give "password" instead`,
          );
          valid = false;
        } else if (value === '') {
          problems.push(
            `${where}.passwordEnv: environment variable ${name} is set but empty; set it to the database password ` +
              `(an empty value usually means a missing entry in .env or in the EnvironmentFile)`,
          );
          valid = false;
        } else if (value.length > MAX_PASSWORD_CHARS) {
          problems.push(`${where}.passwordEnv: environment variable ${name} holds more than ${MAX_PASSWORD_CHARS} characters; is it the right variable?`);
          valid = false;
        } else password = value;
      } else valid = false;
    }
  } else if (passwordSource !== null) {
    password = literalPassword;
  } else if (!urlFailed) {
    problems.push(
      `${where}: missing the password; give "passwordEnv" (the name of an environment variable holding it; keeps the secret out of the file) or "password"` +
        (present('url') ? ', or put it in the URL' : ''),
    );
    valid = false;
  }

  if (!valid || host === undefined || port === undefined || user === undefined || database === undefined || password === undefined) {
    return { problems, value: null };
  }
  const socketPath = typeof s['socketPath'] === 'string' && s['socketPath'].length > 0 ? resolvePath(baseDir, s['socketPath']) : null;
  return { problems, value: { engine: 'mysql', host, port, user, password, database, socketPath } };
}
