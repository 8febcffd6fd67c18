// replisql command line: wiring only. Usage errors exit 2, runtime failures exit 1.
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { ConfigError } from '../errors.js';
import { loadConfig, findNode } from '../config/load.js';
import { MAX_NODES, MAX_NODE_ID } from '../config/schema.js';
import { parseEndpoints } from '../client/client.js';
import { runDemo } from './demo.js';
import { runClientShell } from './client-shell.js';
import { runStatus } from './status.js';
import { ACK_LEVELS, MAX_STALENESS_LIMIT_MS, READ_CONSISTENCY_LEVELS, type AckLevel, type ReadConsistency } from '../core/types.js';

export const EXIT_USAGE = 2;

function intArg(min: number, max: number) {
  return (value: string): number => {
    if (!/^\d+$/.test(value.trim()) || Number(value) < min || Number(value) > max) {
      throw new InvalidArgumentError(`expected an integer between ${min} and ${max}.`);
    }
    return Number(value);
  };
}

function endpointsArg(value: string): string[] {
  try {
    return parseEndpoints(value);
  } catch (err) {
    throw new InvalidArgumentError(`${(err as Error).message}.`);
  }
}

function buildProgram(setExit: (code: number) => void): Command {
  const program = new Command();
  program
    .name('replisql')
    .description('Replicated SQL middleware: Bully election with terms and majority, an ordered MD5-checked log, catch-up')
    .exitOverride()
    .showHelpAfterError('(add --help for usage)')
    .configureHelp({ sortSubcommands: false });

  program
    .command('node')
    .description('run one node of the cluster described by a config file')
    .requiredOption('--config <path>', 'config.json (see docs/configuration.md)')
    .requiredOption('--id <n>', 'this node\'s id in the config', intArg(1, MAX_NODE_ID))
    .action(async (o: { config: string; id: number }) => {
      const config = loadConfig(o.config); // fail fast with every config problem listed
      findNode(config, o.id);
      for (const w of config.warnings) process.stderr.write(`warning: ${w}\n`);
      // Loaded on demand: `client` and `status` should not load the node runtime or the simulator.
      const { runNode } = await import('../node/node-runtime.js');
      await runNode({ configPath: o.config, nodeId: o.id });
    });

  program
    .command('sim')
    .description('deterministic simulation of a cluster under faults; a failing seed replays exactly')
    .addOption(new Option('--seed <n>', 'first seed').argParser(intArg(0, Number.MAX_SAFE_INTEGER)).default(1))
    .addOption(new Option('--seeds <k>', 'how many consecutive seeds to run').argParser(intArg(1, 10_000_000)).default(1))
    .addOption(new Option('--nodes <n>', 'cluster size (3 to 7); 0 picks 3..7 from each seed').argParser(intArg(0, 7)).default(5))
    .addOption(new Option('--steps <m>', 'ticks of fault injection per seed (100 ms of simulated time each)').argParser(intArg(1, 1_000_000)).default(600))
    .addOption(new Option('--jobs <j>', 'processes to spread a sweep over').argParser(intArg(1, 64)).default(1))
    .option('--verbose', 'print every event (single seed)', false)
    .action(async (o: { seed: number; seeds: number; nodes: number; steps: number; jobs: number; verbose: boolean }) => {
      if (o.nodes > 0 && o.nodes < 3) throw new InvalidArgumentError(`--nodes must be 0 or between 3 and 7, got ${o.nodes}`);
      const { runSimCli } = await import('../sim/sim-cli.js');
      setExit(await runSimCli({ seed: o.seed, seeds: o.seeds, nodes: o.nodes, steps: o.steps, jobs: o.jobs, verbose: o.verbose }));
    });

  program
    .command('demo')
    .description('start a local cluster (child processes on 127.0.0.1) and show how to use it')
    .addOption(new Option('--nodes <n>', 'number of nodes').argParser(intArg(1, MAX_NODES)).default(3))
    .option('--dir <path>', 'folder for config.json, data/ and logs/', './demo-data')
    .addOption(new Option('--base-port <port>', 'port of node 1; node N uses base+N-1').argParser(intArg(1, 65535)).default(7001))
    .action(async (o: { nodes: number; dir: string; basePort: number }) => {
      if (o.basePort + o.nodes - 1 > 65535) {
        throw new InvalidArgumentError(`--base-port ${o.basePort} leaves no room for ${o.nodes} ports below 65536`);
      }
      setExit(await runDemo({ nodes: o.nodes, dir: o.dir, basePort: o.basePort }));
    });

  program
    .command('client')
    .description('run SQL against the cluster (-e) or open an interactive shell')
    .requiredOption('--connect <host:port,...>', 'endpoints, tried in order; the client fails over between them', endpointsArg)
    .option('-e, --execute <sql>', 'run these statements (sent as one request) and exit')
    .option('--json', 'print one JSON line per statement result (or error)', false)
    .addOption(new Option('--timeout <ms>', 'deadline per request, failover included').argParser(intArg(1, 3_600_000)).default(20_000))
    .addOption(new Option('--consistency <level>', 'read level of every request (docs/consistency.md); default: the node\'s').choices([...READ_CONSISTENCY_LEVELS]))
    .addOption(new Option('--max-staleness <ms>', 'bound of the bounded read level').argParser(intArg(0, MAX_STALENESS_LIMIT_MS)))
    .addOption(new Option('--ack <level>', 'when writes are acknowledged; default: the node\'s writeAck').choices([...ACK_LEVELS]))
    .action(async (o: { connect: string[]; execute?: string; json: boolean; timeout: number; consistency?: ReadConsistency; maxStaleness?: number; ack?: AckLevel }) => {
      setExit(
        await runClientShell({
          endpoints: o.connect,
          json: o.json,
          timeoutMs: o.timeout,
          ...(o.execute !== undefined ? { execute: o.execute } : {}),
          queryOptions: {
            ...(o.consistency !== undefined ? { consistency: o.consistency } : {}),
            ...(o.maxStaleness !== undefined ? { maxStalenessMs: o.maxStaleness } : {}),
            ...(o.ack !== undefined ? { ack: o.ack } : {}),
          },
        }),
      );
    });

  program
    .command('status')
    .description("show a node's view of the cluster: coordinator, term, indexes, peers")
    .requiredOption('--connect <host:port,...>', 'endpoints; the first that answers is asked', endpointsArg)
    .option('--json', 'print the status object as JSON', false)
    .addOption(new Option('--timeout <ms>', 'deadline').argParser(intArg(1, 3_600_000)).default(5000))
    .action(async (o: { connect: string[]; json: boolean; timeout: number }) => {
      setExit(await runStatus({ endpoints: o.connect, json: o.json, timeoutMs: o.timeout }));
    });

  program
    .command('faults')
    .description('fault suite: nodes in Linux network namespaces under partitions, pauses and kills while a workload runs, then a check (root; docs/reliability.md)')
    .addOption(new Option('--workload <name>', 'set, register, bank or all').default('set'))
    .addOption(new Option('--faults <list>', 'comma list of isolate, isolate-coordinator, split, bridge, one-way, pause, kill, db-kill (needs --engine mysql); or all').default('all'))
    .addOption(new Option('--engine <engine>', "the nodes' database: sqlite, or mysql (one MariaDB server per node)").choices(['sqlite', 'mysql']).default('sqlite'))
    .addOption(new Option('--duration <s>', 'seconds of workload under faults, per workload').argParser(intArg(5, 86_400)).default(60))
    .addOption(new Option('--nodes <n>', 'cluster size: 3 or 5').argParser(intArg(3, 5)).default(3))
    .addOption(new Option('--seed <n>', 'seed of the nemesis and the workload').argParser(intArg(0, 2 ** 31 - 1)).default(1))
    .option('--keep-history <dir>', 'save every history (and the run folder with the node logs) here; failing histories are always saved')
    .addOption(new Option('--heartbeat-ms <ms>', 'heartbeatIntervalMs of the cluster').argParser(intArg(100, 60_000)).default(1000))
    .addOption(new Option('--failure-timeout-ms <ms>', 'failureTimeoutMs of the cluster (>= 2 heartbeats)').argParser(intArg(200, 600_000)).default(5000))
    .addOption(new Option('--heal-cut <s>', 'length of the coordinator cut whose heal is measured; 0 skips it').argParser(intArg(0, 3600)).default(10))
    .action(async (o: { workload: string; faults: string; engine: 'sqlite' | 'mysql'; duration: number; nodes: number; seed: number; keepHistory?: string; heartbeatMs: number; failureTimeoutMs: number; healCut: number }) => {
      if (o.nodes !== 3 && o.nodes !== 5) throw new InvalidArgumentError(`--nodes must be 3 or 5, got ${o.nodes}`);
      if (o.failureTimeoutMs < 2 * o.heartbeatMs) throw new InvalidArgumentError(`--failure-timeout-ms ${o.failureTimeoutMs} must be at least 2 x --heartbeat-ms (${2 * o.heartbeatMs})`);
      if (o.heartbeatMs % 100 !== 0) throw new InvalidArgumentError(`--heartbeat-ms must be a multiple of 100 (the tick), got ${o.heartbeatMs}`);
      const { runFaults, parseWorkloads, formatSummary } = await import('../faults/runner.js');
      const { parseFaults } = await import('../faults/nemesis.js');
      let workloads;
      let faults;
      try {
        workloads = parseWorkloads(o.workload);
        faults = parseFaults(o.faults, o.engine);
      } catch (err) {
        throw new InvalidArgumentError((err as Error).message);
      }
      const log = (line: string): void => void process.stderr.write(`${line}\n`);
      const report = await runFaults({
        workloads,
        faults,
        durationS: o.duration,
        nodes: o.nodes,
        seed: o.seed,
        keepHistory: o.keepHistory ?? null,
        heartbeatIntervalMs: o.heartbeatMs,
        failureTimeoutMs: o.failureTimeoutMs,
        healCutS: o.healCut,
        engine: o.engine,
        log,
      });
      if (report.skipped !== null) {
        process.stderr.write(`faults: cannot run: ${report.skipped}\n`);
        setExit(1);
        return;
      }
      process.stdout.write(`${formatSummary(report.rows)}\n`);
      for (const m of report.measurements) process.stdout.write(`${m}\n`);
      process.stdout.write(`${report.ok ? 'PASS' : 'FAIL'}\n`);
      setExit(report.ok ? 0 : 1);
    });

  return program;
}

/** Parses argv (as process.argv) and runs the command; resolves to the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  let code = 0;
  const program = buildProgram((c) => (code = c));
  try {
    if (argv.length <= 2) {
      program.outputHelp({ error: true });
      return EXIT_USAGE;
    }
    await program.parseAsync([...argv]);
    return code;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version') return 0;
      if (err instanceof InvalidArgumentError && !err.message.startsWith('error:')) {
        process.stderr.write(`error: ${err.message}\n`);
      }
      return EXIT_USAGE;
    }
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      return 1;
    }
    process.stderr.write(`replisql: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
}

process.exitCode = await main(process.argv);
