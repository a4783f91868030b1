// Kubernetes resource quantities ("500m", "2", "128Mi", "1.5Gi", "1e3"): parsed to a number of
// base units (cores for CPU, bytes for memory), as the scheduler adds them up.

const BINARY: Record<string, number> = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60 };
const DECIMAL: Record<string, number> = { n: 1e-9, u: 1e-6, m: 1e-3, '': 1, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18 };

const QUANTITY = /^([+-]?(?:\d+(?:\.\d*)?|\.\d+))(?:([eE][+-]?\d+)|([KMGTPE]i)|([numkMGTPE]))?$/;

/** Whether `s` is a valid quantity string. */
export function isQuantity(s: unknown): s is string {
  return typeof s === 'string' && QUANTITY.test(s);
}

/** The quantity in base units; throws RangeError naming the bad string. */
export function parseQuantity(s: string): number {
  const m = QUANTITY.exec(s);
  if (m === null) throw new RangeError(`"${s}" is not a quantity (examples: 500m, 2, 128Mi, 1Gi)`);
  const n = Number(m[1]);
  if (m[2] !== undefined) return n * 10 ** Number(m[2].slice(1));
  if (m[3] !== undefined) return n * BINARY[m[3]]!;
  return n * DECIMAL[m[4] ?? '']!;
}

/** Formats a CPU amount in cores the way Kubernetes prints it (e.g. 0.25 → "250m"). */
export function formatCpu(cores: number): string {
  const milli = Math.round(cores * 1000);
  return milli % 1000 === 0 ? String(milli / 1000) : `${milli}m`;
}

/** Formats bytes with the largest binary suffix that divides them exactly. */
export function formatBytes(bytes: number): string {
  for (const suffix of ['Ei', 'Pi', 'Ti', 'Gi', 'Mi', 'Ki'] as const) {
    const unit = BINARY[suffix]!;
    if (bytes >= unit && bytes % unit === 0) return `${bytes / unit}${suffix}`;
  }
  return String(bytes);
}
