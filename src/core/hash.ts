// Checksums of the replicated log. Hashing is pure computation, so the core may use it.
// MD5 of the command is the original system's integrity check; the chain hash folds each entry
// into its predecessor so that "identical up to index N" is one comparison of two strings.
import { createHash } from 'node:crypto';

export function md5Hex(text: string): string {
  return createHash('md5').update(text, 'utf8').digest('hex');
}

export function chainHashOf(prevChainHash: string, index: number, term: number, md5: string): string {
  return createHash('sha256').update(`${prevChainHash}|${index}|${term}|${md5}`, 'utf8').digest('hex').slice(0, 32);
}
