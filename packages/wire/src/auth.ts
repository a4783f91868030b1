import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/** The HTTP header that carries a dialer's credential in the WebSocket upgrade request. */
export const AUTH_HEADER = 'x-flotilla-auth';

const VERSION = 'v1';
/** How far the dialer's clock may be from ours, and how long a credential stays usable. */
const MAX_SKEW_MS = 60_000;

function mac(secret: string, payload: string): string {
  return createHmac('sha256', secret).update(payload).digest('base64url');
}

/**
 * A credential proving knowledge of the cluster secret without sending it: an HMAC-SHA256
 * over who is dialing, when, and a nonce.
 */
export function makeCredential(secret: string, name: string, now = Date.now()): string {
  if (!/^[A-Za-z0-9._-]{1,128}$/.test(name)) throw new Error(`a connection name must be 1–128 letters, digits, '.', '_' or '-', got "${name}"`);
  const nonce = randomBytes(12).toString('base64url');
  const payload = `${VERSION}.${name}.${now}.${nonce}`;
  return `${payload}.${mac(secret, payload)}`;
}

export type CredentialCheck = { ok: true; name: string } | { ok: false; reason: string };

/** Checks a credential from an upgrade request against the cluster secret. */
export function checkCredential(secret: string, credential: string | undefined, now = Date.now()): CredentialCheck {
  if (credential === undefined || credential === '') return { ok: false, reason: `no ${AUTH_HEADER} header` };
  const parts = credential.split('.');
  if (parts.length !== 5 || parts[0] !== VERSION) return { ok: false, reason: 'credential is not in the v1 format' };
  const [, name, stamp, , signature] = parts as [string, string, string, string, string];
  const payload = parts.slice(0, 4).join('.');
  const expected = Buffer.from(mac(secret, payload));
  const given = Buffer.from(signature);
  if (expected.length !== given.length || !timingSafeEqual(expected, given)) return { ok: false, reason: 'credential signature does not match the cluster secret' };
  const at = Number(stamp);
  if (!Number.isFinite(at) || Math.abs(now - at) > MAX_SKEW_MS) return { ok: false, reason: 'credential is expired or from a clock far off' };
  return { ok: true, name };
}
