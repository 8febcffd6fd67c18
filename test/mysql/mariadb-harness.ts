// The tests' MariaDB instances: the same module the fault suite uses (src/faults/mariadb.ts).
export * from '../../src/faults/mariadb.js';
