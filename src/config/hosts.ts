// Host names and addresses: loopback detection, whether a host can be connected to, and keys that
// compare addresses the way the operating system would (all loopback addresses are one machine).
import { isIP } from 'node:net';
import { withoutCredentials } from './redact.js';

/** True for 127.0.0.0/8, ::1, localhost and *.localhost (and IPv4-mapped loopback). */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, '');
  if (h === 'localhost' || h.endsWith('.localhost') || h === 'localhost.') return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (isIP(h) === 6) {
    if (h === '::1' || /^0{0,4}(:0{0,4}){6}:0{0,3}1$/.test(h)) return true;
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(h);
    return mapped !== null && mapped[1]!.startsWith('127.');
  }
  return false;
}

const HOSTNAME_RE = /^(?=.{1,253}\.?$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/;

/**
 * Null when `host` is usable as an address to connect to; otherwise the reason. `what` says who
 * connects: a node's host is dialled by its peers and clients, a database host by its node.
 */
export function hostProblem(rawHost: string, what: 'node' | 'database' = 'node'): string | null {
  const h = rawHost.replace(/^\[|\]$/g, '');
  const host = withoutCredentials(rawHost); // for messages: "user:secret@db1" pasted as a host
  if (h === '0.0.0.0' || h === '::' || h === '0:0:0:0:0:0:0:0') {
    return what === 'node'
      ? `"${host}" means "listen on every interface", it is not an address other nodes can connect to; use this machine's real address (or 127.0.0.1 when every node runs on this machine)`
      : `"${host}" means "listen on every interface", it is not an address a node can connect to; use the database server's address (127.0.0.1 when it runs on the node's machine)`;
  }
  if (isIP(h) !== 0) return null;
  const hostPort = /^(.+):(\d+)$/.exec(rawHost);
  if (hostPort !== null && isIP(hostPort[1]!) !== 6) {
    return `"${host}" contains a port; put only the address in "host" and the port in "port"`;
  }
  if (!HOSTNAME_RE.test(rawHost)) {
    return `"${host}" is neither an IP address nor a valid host name`;
  }
  return null;
}

/** Loopback hosts collide with each other on one machine: compare them as one address. */
export function addressKey(host: string, port: number): string {
  return `${isLoopbackHost(host) ? 'loopback' : host.toLowerCase().replace(/\.$/, '')}:${port}`;
}

/**
 * The machine a database is on, as a comparable key: a loopback database host means "the node's own
 * machine", so it takes the node's host (two nodes on different machines may both use
 * 127.0.0.1:3306/replisql; two on one machine may not).
 */
export function databaseHostKey(dbHost: string, nodeHost: unknown, nodeIndex: number): string {
  if (!isLoopbackHost(dbHost)) return dbHost.toLowerCase().replace(/\.$/, '');
  if (typeof nodeHost !== 'string' || nodeHost === '' || hostProblem(nodeHost) !== null) return `?node${nodeIndex}`;
  return isLoopbackHost(nodeHost) ? 'loopback' : nodeHost.toLowerCase().replace(/\.$/, '');
}
