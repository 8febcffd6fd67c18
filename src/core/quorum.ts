// Majority arithmetic over the configured cluster (never over the nodes that happen to be up).

export function majorityOf(clusterSize: number): number {
  return Math.floor(clusterSize / 2) + 1;
}

/** The highest index that at least `needed` of the given match indexes have reached. */
export function quorumIndex(matchIndexes: readonly number[], needed: number): number {
  if (needed <= 0 || matchIndexes.length < needed) return 0;
  const sorted = [...matchIndexes].sort((a, b) => b - a);
  return sorted[needed - 1] as number;
}
