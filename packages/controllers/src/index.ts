// @flotilla/controllers: the reconcile loops the Raft leader runs (Kubernetes'
// kube-controller-manager, in the same level-triggered shape).
export type { Controller, ControllerContext } from './context.ts';
export { ReplicaSetController, type ReplicaSetControllerOptions } from './replicaset.ts';
export { DeploymentController, type DeploymentControllerOptions } from './deployment.ts';
export { NodeLifecycleController, NODE_LEASE_NAMESPACE, type NodeLifecycleOptions } from './nodelifecycle.ts';
export { EndpointsController, type EndpointsControllerOptions } from './endpoints.ts';
export { GarbageCollector, GC_RESOURCES, type GarbageCollectorOptions } from './gc.ts';
export { NamespaceController, NAMESPACE_FINALIZER, namespacedResources, type NamespaceControllerOptions, type NamespaceCondition } from './namespace.ts';
export { EventTTLController, DEFAULT_EVENT_TTL_MS, type EventTTLOptions } from './event-ttl.ts';
