// @flotilla/agent: the worker agent (kubelet, process container runtime, service proxy).
export { Agent, type AgentOptions } from './agent.ts';
export { AgentApiClient } from './api-client.ts';
export { Kubelet } from './kubelet.ts';
export { nodeObject, registerNode, LeaseKeeper, NODE_LEASE_NAMESPACE } from './node.ts';
export { PortAllocator, DEFAULT_POD_PORTS, portEnvName, type PortRange } from './ports.ts';
export { DEFAULT_BACKOFF, type Backoff } from './pod-worker.ts';
export { podPhase, podStatus } from './pod-status.ts';
export { containerEnv, expand, podField } from './env.ts';
export { ServiceProxy } from './proxy.ts';
export { ProcessRuntime } from './runtime/process.ts';
export { RuntimeError, type ContainerRuntime, type ContainerConfig, type ContainerInfo, type LogOptions, type LogSink } from './runtime/types.ts';
