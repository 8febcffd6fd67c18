// A min-heap of timed events; ties are broken by insertion order so runs are reproducible.
export interface Timed<T> {
  readonly time: number;
  readonly seq: number;
  readonly value: T;
}

export class EventQueue<T> {
  private heap: Timed<T>[] = [];
  private seq = 0;

  push(time: number, value: T): void {
    const item = { time, seq: this.seq++, value };
    const h = this.heap;
    h.push(item);
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!less(h[i] as Timed<T>, h[parent] as Timed<T>)) break;
      [h[i], h[parent]] = [h[parent] as Timed<T>, h[i] as Timed<T>];
      i = parent;
    }
  }

  pop(): Timed<T> | undefined {
    const h = this.heap;
    if (h.length === 0) return undefined;
    const top = h[0] as Timed<T>;
    const last = h.pop() as Timed<T>;
    if (h.length > 0) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && less(h[l] as Timed<T>, h[m] as Timed<T>)) m = l;
        if (r < h.length && less(h[r] as Timed<T>, h[m] as Timed<T>)) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m] as Timed<T>, h[i] as Timed<T>];
        i = m;
      }
    }
    return top;
  }

  /** Time of the earliest event, undefined when empty. */
  peekTime(): number | undefined {
    return this.heap[0]?.time;
  }

  get size(): number {
    return this.heap.length;
  }
}

function less<T>(a: Timed<T>, b: Timed<T>): boolean {
  return a.time < b.time || (a.time === b.time && a.seq < b.seq);
}
