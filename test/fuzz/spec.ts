// Compact descriptions of large or odd values. The generators (fast-check) describe a 64 KB
// selector as `rep("a=b,", 16384)` and a 3 MB body as a shape, not as the bytes themselves:
// generating stays cheap, a finding prints in a line, and the bytes are made only when sent
// (materialize), the same way every time.

/** `pre + unit × n + post`, made when sent. */
export class Rep {
  constructor(
    readonly unit: string,
    readonly n: number,
    readonly pre = '',
    readonly post = '',
  ) {}
  toString(): string {
    return this.materialize();
  }
  materialize(): string {
    return this.pre + this.unit.repeat(this.n) + this.post;
  }
  get length(): number {
    return this.pre.length + this.unit.length * this.n + this.post.length;
  }
  describe(): string {
    return `${this.pre === '' ? '' : `${JSON.stringify(short(this.pre, 60))}+`}${JSON.stringify(short(this.unit, 40))}×${this.n}${this.post === '' ? '' : `+${JSON.stringify(short(this.post, 60))}`}`;
  }
}

/** A value nested `depth` times: `open`… `value` …`close` (JSON text), e.g. [[[[1]]]]. */
export class Nest {
  constructor(
    readonly depth: number,
    readonly open: string,
    readonly close: string,
    readonly inner = '1',
  ) {}
  materialize(): string {
    return this.open.repeat(this.depth) + this.inner + this.close.repeat(this.depth);
  }
  describe(): string {
    return `nest(${JSON.stringify(this.open)}×${this.depth} ${JSON.stringify(short(this.inner, 40))} ${JSON.stringify(this.close)}×${this.depth})`;
  }
}

/** Raw bytes, made when sent (a seeded filler, so a finding can be repeated). */
export class Bytes {
  constructor(
    readonly n: number,
    readonly seed: number,
    readonly pattern: 'random' | 'zero' | 'ff' | 'ascii' = 'random',
  ) {}
  materialize(): Buffer {
    const b = Buffer.alloc(this.n);
    if (this.pattern === 'zero') return b;
    if (this.pattern === 'ff') return b.fill(0xff);
    let x = this.seed >>> 0 || 1;
    for (let i = 0; i < this.n; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      b[i] = this.pattern === 'ascii' ? 0x20 + ((x >>> 0) % 95) : x & 0xff;
    }
    return b;
  }
  describe(): string {
    return `bytes(${this.n}, ${this.pattern}, seed ${this.seed})`;
  }
}

export type Str = string | Rep;

export function str(s: Str): string {
  return typeof s === 'string' ? s : s.materialize();
}

export function strLength(s: Str): number {
  return s.length;
}

export function short(s: string, max = 200): string {
  if (s.length <= max) return s;
  return `${s.slice(0, max)}…(${s.length} chars)`;
}

export function showStr(s: Str, max = 200): string {
  return typeof s === 'string' ? JSON.stringify(short(s, max)) : s.describe();
}

/**
 * A JSON-like value that may hold Rep/Nest/Bytes leaves: made into a plain value (for msgpack
 * frames) with every Rep a string, Nest a nested array, Bytes a Uint8Array.
 */
export function materializeValue(v: unknown): unknown {
  if (v instanceof ManyKeys) return JSON.parse(v.materialize()) as unknown;
  if (v instanceof Rep) return v.materialize();
  if (v instanceof Bytes) return v.materialize();
  if (v instanceof Nest) {
    let x: unknown = v.inner;
    for (let i = 0; i < v.depth; i++) x = v.open === '{' ? { a: x } : [x];
    return x;
  }
  if (Array.isArray(v)) return v.map(materializeValue);
  if (v instanceof Uint8Array || v instanceof Date || typeof v !== 'object' || v === null || v instanceof Map) return v;
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(v)) Object.defineProperty(out, k, { value: materializeValue((v as Record<string, unknown>)[k]), enumerable: true, writable: true, configurable: true });
  return out;
}

/** JSON text of a value that may hold Rep/Nest/Bytes leaves (Nest inlined as text, Bytes as base64). */
export function jsonText(v: unknown): string {
  if (v instanceof ManyKeys) return v.materialize();
  if (v instanceof Rep) return JSON.stringify(v.materialize());
  if (v instanceof Nest) return v.materialize();
  if (v instanceof Bytes) return JSON.stringify(v.materialize().toString('base64'));
  if (v === undefined) return 'null';
  if (typeof v === 'bigint') return v.toString();
  if (typeof v === 'number') return Number.isFinite(v) ? JSON.stringify(v) : String(v === Infinity ? '1e999' : v === -Infinity ? '-1e999' : 'NaN');
  if (Array.isArray(v)) return `[${v.map(jsonText).join(',')}]`;
  if (v instanceof Uint8Array) return JSON.stringify(Buffer.from(v).toString('base64'));
  if (typeof v !== 'object' || v === null) return JSON.stringify(v);
  return `{${Object.keys(v)
    .map((k) => `${JSON.stringify(k)}:${jsonText((v as Record<string, unknown>)[k])}`)
    .join(',')}}`;
}

/** A short readable form of a value with Rep/Nest/Bytes leaves. */
export function describeValue(v: unknown, max = 300): string {
  const text = (x: unknown, budget: { left: number }): string => {
    if (budget.left <= 0) return '…';
    let s: string;
    if (typeof x === 'object' && x !== null && typeof (x as { describe?: unknown }).describe === 'function') s = (x as { describe(): string }).describe();
    else if (x instanceof Uint8Array) s = `bytes(${x.byteLength})`;
    else if (typeof x === 'bigint') s = `${x}n`;
    else if (typeof x === 'string') s = JSON.stringify(short(x, 80));
    else if (typeof x === 'number') s = Number.isNaN(x) ? 'NaN' : Object.is(x, -0) ? '-0' : String(x);
    else if (Array.isArray(x)) s = `[${x.map((e) => text(e, budget)).join(',')}]`;
    else if (x instanceof Date) s = `Date(${x.getTime()})`;
    else if (x instanceof Map) s = `Map(${x.size})`;
    else if (typeof x === 'object' && x !== null)
      s = `{${Object.keys(x)
        .map((k) => `${JSON.stringify(k)}:${text((x as Record<string, unknown>)[k], budget)}`)
        .join(',')}}`;
    else s = String(x);
    budget.left -= s.length;
    return s;
  };
  return short(text(v, { left: max }), max);
}

/** `{"k0":"v","k1":"v",…}` with n distinct keys, made when sent. */
export class ManyKeys {
  constructor(readonly n: number) {}
  materialize(): string {
    const parts: string[] = [];
    for (let i = 0; i < this.n; i++) parts.push(`"k${i}":"v"`);
    return `{${parts.join(',')}}`;
  }
  describe(): string {
    return `manyKeys(${this.n})`;
  }
}
