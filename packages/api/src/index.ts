// @flotilla/api: the Kubernetes-shaped resources Flotilla serves (types shared by every
// package), their validation, and the API server every master runs.

export type * from './types/meta.ts';
export type * from './types/core.ts';
export type * from './types/apps.ts';
export { ApiError, REASONS, type Reason } from './errors.ts';
export { Authenticator, authorize, hashToken, newToken, type Role, type StaticToken, type User } from './auth.ts';
export { parseQuantity, isQuantity, formatCpu, formatBytes } from './quantity.ts';
export {
  parseLabelSelector,
  fromLabelSelector,
  matches,
  ownValue,
  formatSelector,
  parseFieldSelector,
  matchesFields,
  checkDns1123Label,
  checkDns1123Subdomain,
  type Selector,
  type Requirement,
} from './labels.ts';
export { RESOURCES, findResource, resourceForKind, storeKey, apiVersionOf, type ResourceInfo } from './resources.ts';
export { mergePatch, strategicMergePatch, jsonPatch, PatchError, canonicalJson, sameJson } from './patch.ts';
export { ObjectStore, encodeObject, decodeObject } from './objects.ts';
export { ApiServer, MAX_BODY_BYTES, type ApiServerOptions, type ApiCall, type ApiResult } from './http/server.ts';
export { AGENT_PATH } from './http/agents.ts';
export type { LogRequest, LogSink } from './http/logs.ts';
export { AgentClient, AgentApiError, joinCluster, type AgentClientOptions, type ApiResponse, type WatchHandler } from './agent-client.ts';
export { startApi, ensureCa, CA_KEY, type ApiOptions } from './bootstrap.ts';
export { createCa, createServingCert, type Pem } from './certs.ts';
export { timestamp } from './strategy.ts';
export * from './client/index.ts';
export { writeFence } from './objects.ts';
