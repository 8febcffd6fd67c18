// One derivation of the core's timing and limits, used by `replisql node` (from the config file)
// and by the simulator (from its own, faster clock), so both run the same protocol timing rules.
import { defaultCoreConfig, type AckLevel, type CoreConfig, type NodeId } from '../core/types.js';

export interface CoreTiming {
  readonly heartbeatIntervalTicks: number;
  readonly failureTimeoutTicks: number;
  readonly writeTimeoutTicks: number;
  readonly defaultAck: AckLevel;
  readonly seed: number;
}

/**
 * Election timing follows from the heartbeat: candidates stagger by half a heartbeat per live
 * higher id (Bully priority), jitter by a quarter, wait two heartbeats for votes; a write waits for
 * a coordinator through one failure timeout plus four heartbeats (a full election).
 */
export function deriveCoreConfig(selfId: NodeId, nodeIds: readonly NodeId[], timing: CoreTiming, limits: Partial<CoreConfig> = {}): CoreConfig {
  const hb = timing.heartbeatIntervalTicks;
  return defaultCoreConfig(selfId, nodeIds, {
    heartbeatIntervalTicks: hb,
    failureTimeoutTicks: timing.failureTimeoutTicks,
    electionStaggerTicks: Math.max(2, Math.round(hb / 2)),
    electionJitterTicks: Math.max(1, Math.round(hb / 4)),
    electionTimeoutTicks: Math.max(5, hb * 2),
    writeTimeoutTicks: timing.writeTimeoutTicks,
    coordinatorWaitTicks: Math.max(timing.failureTimeoutTicks + hb * 4, 10),
    defaultAck: timing.defaultAck,
    seed: timing.seed,
    ...limits,
  });
}
