// Who may do what. Every request carries a bearer token: one of the cluster file's tokens
// (role admin or viewer), or a node credential an agent received when it joined (role node,
// bound to its node's name). Roles decide which verbs on which resources are allowed; the
// node role is further limited to its own Node and Lease and to pods bound to it.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { ApiError } from './errors.ts';

export type Role = 'admin' | 'viewer' | 'node';

export interface User {
  readonly name: string;
  readonly role: Role;
  /** For role node: the node this credential belongs to. */
  readonly node?: string;
}

export interface StaticToken {
  readonly name: string;
  readonly token: string;
  readonly role: 'admin' | 'viewer';
}

export type Verb = 'get' | 'list' | 'watch' | 'create' | 'update' | 'patch' | 'delete' | 'deletecollection';

export interface Attributes {
  readonly verb: Verb;
  readonly resource: string;
  readonly subresource: string | undefined;
  readonly namespace: string | undefined;
  readonly name: string | undefined;
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

export function newToken(): string {
  return randomBytes(24).toString('base64url');
}

function same(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** Turns a bearer token into a user: static tokens first, then node credentials by hash. */
export class Authenticator {
  private readonly nodeTokens = new Map<string, string>(); // token hash → node name

  constructor(private readonly tokens: readonly StaticToken[]) {}

  clearNodeTokens(): void {
    this.nodeTokens.clear();
  }

  /** Node credentials as stored in the cluster (node name → token hash). */
  setNodeToken(node: string, hash: string | undefined): void {
    for (const [h, n] of this.nodeTokens) if (n === node) this.nodeTokens.delete(h);
    if (hash !== undefined) this.nodeTokens.set(hash, node);
  }

  authenticate(header: string | undefined): User {
    if (header === undefined || header === '') throw new ApiError('Unauthorized', 'Unauthorized: this API needs a bearer token (Authorization: Bearer <token>)');
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (m === null) throw new ApiError('Unauthorized', 'Unauthorized: only bearer tokens are accepted');
    const token = m[1]!;
    for (const t of this.tokens) if (same(t.token, token)) return { name: t.name, role: t.role };
    const node = this.nodeTokens.get(hashToken(token));
    if (node !== undefined) return { name: `system:node:${node}`, role: 'node', node };
    throw new ApiError('Unauthorized', 'Unauthorized: the token is not valid for this cluster');
  }
}

const READ: readonly Verb[] = ['get', 'list', 'watch'];

/**
 * Decides on the attributes alone. For the node role some answers depend on the object (is
 * this pod bound to me?): those return 'object' and the handler calls authorizeObject.
 */
export function authorize(user: User, a: Attributes): 'allow' | 'object' {
  const deny = (why: string): never => {
    throw new ApiError('Forbidden', `${a.resource}${a.name === undefined ? '' : ` "${a.name}"`} is forbidden: User "${user.name}" cannot ${a.verb} resource "${a.resource}${a.subresource === undefined ? '' : `/${a.subresource}`}"${a.namespace === undefined ? '' : ` in the namespace "${a.namespace}"`}: ${why}`, {
      ...(a.name === undefined ? {} : { name: a.name }),
      kind: a.resource,
    });
  };
  if (user.role === 'admin') return 'allow';
  if (user.role === 'viewer') {
    if (READ.includes(a.verb)) return 'allow';
    return deny('the viewer role is read-only');
  }
  // role node
  const own = a.name === user.node;
  switch (a.resource) {
    case 'nodes':
      if (READ.includes(a.verb)) return 'allow';
      // A create names its object in the body: the handler checks it (authorizeCreate).
      if (a.verb === 'create' && a.name === undefined) return 'object';
      if ((a.verb === 'update' || a.verb === 'patch') && own) return 'allow';
      return deny('a node may change only its own Node object');
    case 'leases':
      if (a.namespace !== 'kube-node-lease') return deny('a node may use only its own Lease in kube-node-lease');
      if (a.verb === 'create' && a.name === undefined) return 'object';
      if (own && ['get', 'update', 'patch'].includes(a.verb)) return 'allow';
      return deny('a node may use only its own Lease in kube-node-lease');
    case 'pods':
      if (READ.includes(a.verb) && a.subresource !== 'log') return 'allow';
      if (a.subresource === 'status' && (a.verb === 'update' || a.verb === 'patch')) return 'object';
      if (a.subresource === undefined && a.verb === 'delete') return 'object';
      return deny('a node may only read pods and update the status of (or delete) pods bound to it');
    case 'services':
    case 'endpoints':
    case 'namespaces':
      if (READ.includes(a.verb)) return 'allow';
      return deny('a node may only read this resource');
    case 'events':
      if (a.verb === 'create' || a.verb === 'update' || a.verb === 'patch' || READ.includes(a.verb)) return 'allow';
      return deny('a node may not delete events');
    default:
      return deny('nodes have no access to this resource');
  }
}

/** The second half of a node's check on a create: it may create only its own Node and Lease. */
export function authorizeCreate(user: User, resource: string, body: unknown): void {
  if (user.role !== 'node') return;
  const name = (body as { metadata?: { name?: unknown } } | undefined)?.metadata?.name;
  if (name === user.node) return;
  const what = resource === 'nodes' ? 'Node' : 'Lease';
  throw new ApiError('Forbidden', `${resource} is forbidden: User "${user.name}" may create only its own ${what} (named "${user.node}"), not ${JSON.stringify(name ?? '')}`, { kind: resource });
}

/** The second half of a node's check: the pod must be bound to it. */
export function authorizePod(user: User, pod: { spec?: { nodeName?: string }; metadata: { name?: string } }): void {
  if (user.role !== 'node' || pod.spec?.nodeName === user.node) return;
  throw new ApiError('Forbidden', `pods "${pod.metadata.name}" is forbidden: User "${user.name}" may only change pods bound to node "${user.node}"`, { name: pod.metadata.name ?? '', kind: 'pods' });
}
