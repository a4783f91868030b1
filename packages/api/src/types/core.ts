// core/v1 kinds: the fields Flotilla's scheduler, controllers and agent use, spelled as in
// Kubernetes. Fields Flotilla does not act on are omitted (and dropped on write).
import type { KubeObject, ObjectMeta } from './meta.ts';

/** Resource amounts as Kubernetes quantities: "500m", "2", "128Mi", "1Gi". */
export type ResourceList = Record<string, string>;

export interface ResourceRequirements {
  requests?: ResourceList;
  limits?: ResourceList;
}

/** Where an environment variable's value comes from (only fields of the pod itself). */
export interface EnvVarSource {
  /**
   * metadata.name, metadata.namespace, metadata.uid, metadata.labels['KEY'],
   * metadata.annotations['KEY'], spec.nodeName, spec.serviceAccountName, status.hostIP,
   * status.podIP.
   */
  fieldRef?: { fieldPath: string; apiVersion?: string };
}

export interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: EnvVarSource;
}

export interface ContainerPort {
  name?: string;
  containerPort: number;
  protocol?: 'TCP' | 'UDP';
}

export interface HTTPGetAction {
  path?: string;
  port: number | string;
  host?: string;
}

export interface Probe {
  exec?: { command: string[] };
  httpGet?: HTTPGetAction;
  tcpSocket?: { port: number | string; host?: string };
  initialDelaySeconds?: number;
  periodSeconds?: number;
  timeoutSeconds?: number;
  successThreshold?: number;
  failureThreshold?: number;
}

export interface Container {
  name: string;
  /** What to run: Flotilla runs containers as processes; `image` is the executable's name. */
  image?: string;
  command?: string[];
  args?: string[];
  workingDir?: string;
  env?: EnvVar[];
  ports?: ContainerPort[];
  resources?: ResourceRequirements;
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  startupProbe?: Probe;
}

export interface Toleration {
  key?: string;
  operator?: 'Exists' | 'Equal';
  value?: string;
  effect?: 'NoSchedule' | 'PreferNoSchedule' | 'NoExecute';
  tolerationSeconds?: number;
}

export interface NodeSelectorRequirement {
  key: string;
  operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist' | 'Gt' | 'Lt';
  values?: string[];
}

export interface NodeSelectorTerm {
  matchExpressions?: NodeSelectorRequirement[];
}

export interface Affinity {
  nodeAffinity?: {
    requiredDuringSchedulingIgnoredDuringExecution?: { nodeSelectorTerms: NodeSelectorTerm[] };
  };
}

export interface PodSpec {
  containers: Container[];
  restartPolicy?: 'Always' | 'OnFailure' | 'Never';
  nodeName?: string;
  nodeSelector?: Record<string, string>;
  affinity?: Affinity;
  tolerations?: Toleration[];
  schedulerName?: string;
  terminationGracePeriodSeconds?: number;
}

export type PodPhase = 'Pending' | 'Running' | 'Succeeded' | 'Failed' | 'Unknown';

export interface PodCondition {
  type: 'PodScheduled' | 'Ready' | 'Initialized' | 'ContainersReady';
  status: 'True' | 'False' | 'Unknown';
  reason?: string;
  message?: string;
  lastTransitionTime?: string;
}

export interface ContainerState {
  waiting?: { reason?: string; message?: string };
  running?: { startedAt?: string };
  terminated?: { exitCode: number; signal?: number; reason?: string; message?: string; startedAt?: string; finishedAt?: string };
}

export interface ContainerStatus {
  name: string;
  ready: boolean;
  restartCount: number;
  started?: boolean;
  state?: ContainerState;
  lastState?: ContainerState;
  image?: string;
  /** runtime://id of the current run. */
  containerID?: string;
}

export interface PodStatus {
  phase?: PodPhase;
  conditions?: PodCondition[];
  message?: string;
  reason?: string;
  hostIP?: string;
  podIP?: string;
  startTime?: string;
  containerStatuses?: ContainerStatus[];
  /**
   * Flotilla extension: the ports the agent assigned on the node's address (status.hostIP =
   * podIP) for the pod's declared container ports. The process runtime shares the node's
   * network, so a container listens on its assigned port (it is told so in PORT and
   * PORT_<NAME>), and Endpoints carry these ports, not containerPort.
   */
  portMappings?: PortMapping[];
}

export interface PortMapping {
  containerName: string;
  /** The container port's name, if it has one. */
  name?: string;
  containerPort: number;
  protocol?: 'TCP' | 'UDP';
  /** Where the container actually listens, on the node's address. */
  hostPort: number;
}

export interface Pod extends KubeObject {
  apiVersion: 'v1';
  kind: 'Pod';
  metadata: ObjectMeta;
  spec: PodSpec;
  status?: PodStatus;
}

/** The `binding` subresource's body: assign a pod to a node (what the scheduler posts). */
export interface Binding extends KubeObject {
  apiVersion: 'v1';
  kind: 'Binding';
  metadata: ObjectMeta;
  target: { apiVersion?: string; kind?: string; name: string };
}

export interface Taint {
  key: string;
  value?: string;
  effect: 'NoSchedule' | 'PreferNoSchedule' | 'NoExecute';
  timeAdded?: string;
}

export interface NodeSpec {
  unschedulable?: boolean;
  taints?: Taint[];
  podCIDR?: string;
}

export interface NodeCondition {
  type: 'Ready' | 'MemoryPressure' | 'DiskPressure' | 'PIDPressure' | 'NetworkUnavailable';
  status: 'True' | 'False' | 'Unknown';
  reason?: string;
  message?: string;
  lastHeartbeatTime?: string;
  lastTransitionTime?: string;
}

export interface NodeAddress {
  type: 'InternalIP' | 'ExternalIP' | 'Hostname';
  address: string;
}

export interface NodeStatus {
  capacity?: ResourceList;
  allocatable?: ResourceList;
  conditions?: NodeCondition[];
  addresses?: NodeAddress[];
  nodeInfo?: { kubeletVersion?: string; operatingSystem?: string; architecture?: string };
}

export interface Node extends KubeObject {
  apiVersion: 'v1';
  kind: 'Node';
  metadata: ObjectMeta;
  spec?: NodeSpec;
  status?: NodeStatus;
}

export interface Namespace extends KubeObject {
  apiVersion: 'v1';
  kind: 'Namespace';
  metadata: ObjectMeta;
  spec?: { finalizers?: string[] };
  status?: { phase?: 'Active' | 'Terminating' };
}

export interface ServicePort {
  name?: string;
  protocol?: 'TCP' | 'UDP';
  port: number;
  targetPort?: number | string;
  nodePort?: number;
}

export interface ServiceSpec {
  selector?: Record<string, string>;
  ports?: ServicePort[];
  type?: 'ClusterIP' | 'NodePort' | 'LoadBalancer';
  clusterIP?: string;
  /** Local: a node's proxy sends the Service's traffic only to endpoints on that node. */
  internalTrafficPolicy?: 'Cluster' | 'Local';
}

export interface Service extends KubeObject {
  apiVersion: 'v1';
  kind: 'Service';
  metadata: ObjectMeta;
  spec?: ServiceSpec;
  status?: Record<string, unknown>;
}

export interface EndpointAddress {
  ip: string;
  nodeName?: string;
  hostname?: string;
  targetRef?: { kind: string; name: string; namespace?: string; uid?: string };
}

export interface EndpointPort {
  name?: string;
  port: number;
  protocol?: 'TCP' | 'UDP';
}

export interface EndpointSubset {
  addresses?: EndpointAddress[];
  notReadyAddresses?: EndpointAddress[];
  ports?: EndpointPort[];
}

export interface Endpoints extends KubeObject {
  apiVersion: 'v1';
  kind: 'Endpoints';
  metadata: ObjectMeta;
  subsets?: EndpointSubset[];
}

export interface Event extends KubeObject {
  apiVersion: 'v1';
  kind: 'Event';
  metadata: ObjectMeta;
  involvedObject: { kind?: string; namespace?: string; name?: string; uid?: string; apiVersion?: string; resourceVersion?: string; fieldPath?: string };
  reason?: string;
  message?: string;
  type?: 'Normal' | 'Warning';
  source?: { component?: string; host?: string };
  count?: number;
  firstTimestamp?: string;
  lastTimestamp?: string;
}
