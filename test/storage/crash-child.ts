// Child process for the kill -9 test: applies entries in a loop, printing each index once applyEntry
// has resolved (i.e. once the entry is durable). Usage: node --import tsx crash-child.ts <db path>
import { SqliteEngine } from '../../src/storage/sqlite/sqlite-engine.js';

const dbPath = process.argv[2];
if (dbPath === undefined) throw new Error('usage: crash-child.ts <db path>');
const engine = new SqliteEngine({ path: dbPath });
await engine.open();
let { appliedIndex } = await engine.appliedState();
if (appliedIndex === 0) {
  await engine.applyEntry({ index: 1, term: 1, chainHash: 'h1', statements: [{ sql: 'CREATE TABLE k(id INTEGER PRIMARY KEY, payload TEXT NOT NULL)' }] });
  appliedIndex = 1;
}
process.stdout.write(`ready ${appliedIndex}\n`);
for (let i = appliedIndex + 1; ; i++) {
  const r = await engine.applyEntry({
    index: i,
    term: 1,
    chainHash: `h${i}`,
    statements: [{ sql: 'INSERT INTO k(id, payload) VALUES (?, ?)', params: [i, `entry ${i} `.repeat(20)] }],
  });
  if (r.skipped || !r.ok) throw new Error(`entry ${i}: ${JSON.stringify(r)}`);
  process.stdout.write(`${i}\n`);
}
