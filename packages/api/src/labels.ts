// Labels and label selectors, field selectors, and the name and key syntax rules, following
// Kubernetes (apimachinery/pkg/labels, pkg/util/validation).
import type { LabelSelector } from './types/apps.ts';

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const QUALIFIED_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

/** Why `s` is not a DNS-1123 label (≤ 63 lower-case alphanumerics or '-'), or undefined. */
export function checkDns1123Label(s: string): string | undefined {
  if (s.length > 63) return 'must be no more than 63 characters';
  if (!DNS1123_LABEL.test(s)) return "must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character";
  return undefined;
}

/** Why `s` is not a DNS-1123 subdomain (≤ 253, dot-separated labels), or undefined. */
export function checkDns1123Subdomain(s: string): string | undefined {
  if (s.length > 253) return 'must be no more than 253 characters';
  if (!DNS1123_SUBDOMAIN.test(s)) return "must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";
  return undefined;
}

/** Why `key` is not a valid label or annotation key (`[prefix/]name`), or undefined. */
export function checkLabelKey(key: string): string | undefined {
  const slash = key.lastIndexOf('/');
  const name = slash < 0 ? key : key.slice(slash + 1);
  if (slash >= 0) {
    const prefix = key.slice(0, slash);
    const bad = checkDns1123Subdomain(prefix);
    if (bad !== undefined) return `prefix part ${bad}`;
  }
  if (name.length === 0 || name.length > 63) return 'name part must be 1 to 63 characters';
  if (!QUALIFIED_NAME.test(name)) return "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
  return undefined;
}

export function checkLabelValue(value: string): string | undefined {
  if (value.length > 63) return 'must be no more than 63 characters';
  if (!LABEL_VALUE.test(value)) return "must be empty or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
  return undefined;
}

export type Operator = '=' | '!=' | 'in' | 'notin' | 'exists' | '!';

export interface Requirement {
  readonly key: string;
  readonly op: Operator;
  readonly values: readonly string[];
}

/** A parsed selector: every requirement must hold. The empty selector matches everything. */
export type Selector = readonly Requirement[];

export class SelectorError extends Error {
  override readonly name = 'SelectorError';
}

/**
 * The longest label or field selector accepted. Kubernetes has no small bound (only the
 * URL's), but a selector is matched against every object listed or watched: 10 KiB is
 * hundreds of requirements, far more than any client sends.
 */
export const MAX_SELECTOR_LENGTH = 10 * 1024;

function checkLength(text: string, what: string): void {
  if (text.length > MAX_SELECTOR_LENGTH) throw new SelectorError(`the ${what} selector is ${text.length} characters long; the limit is ${MAX_SELECTOR_LENGTH}`);
}

/**
 * Parses a label selector string as Kubernetes accepts it in `?labelSelector=`:
 * `a=b`, `a==b`, `a!=b`, `a in (x,y)`, `a notin (x,y)`, `a`, `!a`, comma-separated.
 */
export function parseLabelSelector(text: string): Selector {
  checkLength(text, 'label');
  const out: Requirement[] = [];
  let i = 0;
  const s = text;
  const skip = (): void => {
    while (i < s.length && s[i] === ' ') i++;
  };
  const word = (): string => {
    skip();
    const start = i;
    while (i < s.length && !' ,=!()'.includes(s[i]!)) i++;
    return s.slice(start, i);
  };
  while (true) {
    skip();
    if (i >= s.length) break;
    let negate = false;
    if (s[i] === '!') {
      negate = true;
      i++;
    }
    const key = word();
    if (key === '') throw new SelectorError(`expected a label key at position ${i} of "${text}"`);
    const badKey = checkLabelKey(key);
    if (badKey !== undefined) throw new SelectorError(`label key "${key}" ${badKey}`);
    skip();
    if (negate) {
      out.push({ key, op: '!', values: [] });
    } else if (i >= s.length || s[i] === ',') {
      out.push({ key, op: 'exists', values: [] });
    } else if (s.startsWith('!=', i)) {
      i += 2;
      out.push({ key, op: '!=', values: [word()] });
    } else if (s.startsWith('==', i) || s[i] === '=') {
      i += s.startsWith('==', i) ? 2 : 1;
      out.push({ key, op: '=', values: [word()] });
    } else {
      const op = word();
      if (op !== 'in' && op !== 'notin') throw new SelectorError(`expected =, !=, in or notin after "${key}" in "${text}"`);
      skip();
      if (s[i] !== '(') throw new SelectorError(`expected ( after ${op} in "${text}"`);
      i++;
      const values: string[] = [];
      for (;;) {
        const v = word();
        if (v !== '') values.push(v);
        skip();
        if (s[i] === ',') {
          i++;
          continue;
        }
        if (s[i] === ')') {
          i++;
          break;
        }
        throw new SelectorError(`unclosed value list after ${op} in "${text}"`);
      }
      if (values.length === 0) throw new SelectorError(`${op} needs at least one value in "${text}"`);
      out.push({ key, op, values });
    }
    for (const v of out[out.length - 1]!.values) {
      const bad = checkLabelValue(v);
      if (bad !== undefined) throw new SelectorError(`label value "${v}" ${bad}`);
    }
    skip();
    if (i < s.length) {
      if (s[i] !== ',') throw new SelectorError(`expected , at position ${i} of "${text}"`);
      i++;
    }
  }
  return out;
}

/** A LabelSelector object (matchLabels, matchExpressions) as requirements. */
export function fromLabelSelector(sel: LabelSelector | undefined): Selector {
  const out: Requirement[] = [];
  for (const [key, value] of Object.entries(sel?.matchLabels ?? {})) out.push({ key, op: '=', values: [value] });
  for (const e of sel?.matchExpressions ?? []) {
    const op: Operator = e.operator === 'In' ? 'in' : e.operator === 'NotIn' ? 'notin' : e.operator === 'Exists' ? 'exists' : '!';
    out.push({ key: e.key, op, values: e.values ?? [] });
  }
  return out;
}

/** `map[key]` if it is its own: a label "constructor" or "toString" is not on every object. */
export function ownValue(map: Readonly<Record<string, string>> | undefined, key: string): string | undefined {
  return map !== undefined && Object.hasOwn(map, key) ? map[key] : undefined;
}

export function matches(selector: Selector, labels: Readonly<Record<string, string>> | undefined): boolean {
  return selector.every((r) => {
    const v = ownValue(labels, r.key);
    switch (r.op) {
      case '=':
        return v === r.values[0];
      case '!=':
        return v !== r.values[0];
      case 'in':
        return v !== undefined && r.values.includes(v);
      case 'notin':
        return v === undefined || !r.values.includes(v);
      case 'exists':
        return v !== undefined;
      case '!':
        return v === undefined;
    }
  });
}

/** Prints a selector the way Kubernetes does (e.g. for Scale.status.selector). */
export function formatSelector(selector: Selector): string {
  return selector
    .map((r) => {
      switch (r.op) {
        case '=':
          return `${r.key}=${r.values[0]}`;
        case '!=':
          return `${r.key}!=${r.values[0]}`;
        case 'in':
        case 'notin':
          return `${r.key} ${r.op} (${r.values.join(',')})`;
        case 'exists':
          return r.key;
        case '!':
          return `!${r.key}`;
      }
    })
    .join(',');
}

/** A field selector: `field=value`, `field==value`, `field!=value`, comma-separated. */
export interface FieldRequirement {
  readonly field: string;
  readonly op: '=' | '!=';
  readonly value: string;
}

/**
 * Parses `field=value,…` in one pass. (A regular expression with `(.*?)\s*$` over each part
 * backtracked quadratically on a value with a long run of spaces inside, `x<spaces>x`: 64 KB
 * held the event loop 2.4 s.)
 */
export function parseFieldSelector(text: string, supported: readonly string[]): FieldRequirement[] {
  checkLength(text, 'field');
  if (text.trim() === '') return [];
  return text.split(',').map((part) => {
    const req = scanFieldRequirement(part);
    if (req === undefined) throw new SelectorError(`field selector "${part}" must be field=value or field!=value`);
    if (!supported.includes(req.field)) throw new SelectorError(`field "${req.field}" is not supported for this kind (supported: ${supported.join(', ')})`);
    return req;
  });
}

const FIELD_CHAR = /[A-Za-z0-9.]/;

/** `  field  (=|==|!=)  value  `, or undefined. */
function scanFieldRequirement(part: string): FieldRequirement | undefined {
  const s = part.trimStart();
  let i = 0;
  while (i < s.length && FIELD_CHAR.test(s[i]!)) i++;
  const field = s.slice(0, i);
  const rest = s.slice(i).trimStart();
  const op = rest.startsWith('==') ? '==' : rest.startsWith('!=') ? '!=' : rest.startsWith('=') ? '=' : undefined;
  if (field === '' || op === undefined) return undefined;
  return { field, op: op === '!=' ? '!=' : '=', value: rest.slice(op.length).trim() };
}

export function matchesFields(reqs: readonly FieldRequirement[], fields: Readonly<Record<string, string>>): boolean {
  return reqs.every((r) => ((ownValue(fields, r.field) ?? '') === r.value) === (r.op === '='));
}
