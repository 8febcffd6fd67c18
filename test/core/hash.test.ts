// The core's own MD5 must agree with OpenSSL's on every input, including non-ASCII text and
// lengths around the 64-byte block and 56-byte padding boundaries.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { md5Hex } from '../../src/core/hash.js';

const ref = (s: string): string => createHash('md5').update(s, 'utf8').digest('hex');

test('md5Hex matches the RFC 1321 test vectors and node:crypto', () => {
  assert.equal(md5Hex(''), 'd41d8cd98f00b204e9800998ecf8427e');
  assert.equal(md5Hex('abc'), '900150983cd24fb0d6963f7d28e17f72');
  assert.equal(md5Hex('message digest'), 'f96b697d7cb7938d525a2f31aaf161d0');
  for (let n = 0; n < 200; n++) assert.equal(md5Hex('x'.repeat(n)), ref('x'.repeat(n)), `length ${n}`);
  assert.equal(md5Hex('ação, 日本語, 🚀'), ref('ação, 日本語, 🚀'));
  fc.assert(fc.property(fc.string({ unit: 'grapheme', maxLength: 300 }), (s) => md5Hex(s) === ref(s)), { numRuns: 500 });
});
