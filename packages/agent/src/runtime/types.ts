// The container-runtime interface: what the kubelet needs from whatever runs containers. The
// process runtime (process.ts) is the one Flotilla ships; another runtime implements the same
// interface. A container here is one run of one container of a pod: a restart is a new
// container (a new id, attempt + 1), as in Kubernetes' CRI.

/** Why the runtime refused a container, shown in the pod's status (waiting.reason / message). */
export class RuntimeError extends Error {
  override readonly name = 'RuntimeError';
  constructor(
    /** A CamelCase reason, e.g. ImageNotRunnable, CommandNotFound, RunContainerError. */
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

export interface ContainerConfig {
  readonly podUid: string;
  readonly podNamespace: string;
  readonly podName: string;
  readonly containerName: string;
  /** 0 for the first run of this container in this pod, then 1, 2, … */
  readonly attempt: number;
  /** From the pod spec: how the runtime treats it is the runtime's to document. */
  readonly image?: string;
  readonly command?: readonly string[];
  readonly args?: readonly string[];
  /** The complete environment of the process (the kubelet has resolved every variable). */
  readonly env: Readonly<Record<string, string>>;
  readonly workingDir?: string;
  /** Limits to enforce if the runtime can (see limitsEnforced). */
  readonly limits?: { readonly cpuMillis?: number; readonly memoryBytes?: number };
}

export type ContainerState = 'created' | 'running' | 'exited';

export interface ContainerInfo {
  /** Unique on this node: `${podUid}_${containerName}_${attempt}`. */
  readonly id: string;
  readonly podUid: string;
  readonly podNamespace: string;
  readonly podName: string;
  readonly containerName: string;
  readonly attempt: number;
  readonly state: ContainerState;
  readonly pid?: number;
  readonly createdAt: Date;
  readonly startedAt?: Date;
  readonly finishedAt?: Date;
  /** For exited containers; undefined when not known (e.g. a process adopted after an agent restart). */
  readonly exitCode?: number;
  /** The signal that ended it, e.g. SIGKILL. */
  readonly signal?: string;
  /** Completed (exit 0), Error, OOMKilled, or ContainerStatusUnknown (exit not observed). */
  readonly reason?: string;
  /** The image as given (for containerStatuses[].image). */
  readonly image?: string;
}

export interface LogOptions {
  /** The run before the current one (Kubernetes' `previous`). */
  readonly previous?: boolean;
  readonly tailLines?: number;
  readonly limitBytes?: number;
  readonly sinceSeconds?: number;
  /** Keep sending what the container writes until cancelled or the container exits. */
  readonly follow?: boolean;
}

export interface LogSink {
  data(chunk: Uint8Array): void;
  /** No more data; `error` if the logs could not be read (e.g. no previous run). */
  end(error?: { readonly code: number; readonly message: string }): void;
}

export interface ContainerRuntime {
  /** e.g. "process". */
  readonly name: string;
  /** Whether CPU and memory limits are enforced, and a sentence saying why or why not. */
  readonly limits: { readonly enforced: boolean; readonly note: string };
  /**
   * Finds containers left by an earlier run of the agent (same data directory): running ones
   * are adopted (their exit is noticed by polling; the exit code is then unknown), exited ones
   * are listed as exited. Call once, before anything else.
   */
  recover(): Promise<ContainerInfo[]>;
  /** Prepares a container (checks the command, opens its log); throws RuntimeError if it cannot run. */
  create(config: ContainerConfig): Promise<ContainerInfo>;
  /** Starts a created container. Throws RuntimeError (e.g. the program does not exist). */
  start(id: string): Promise<ContainerInfo>;
  /** SIGTERM to the container's whole process group, SIGKILL after graceMs; resolves once it has exited. */
  stop(id: string, graceMs: number): Promise<ContainerInfo>;
  /** Forgets an exited container and deletes its log (stopping it first if needed). */
  remove(id: string): Promise<void>;
  /** Every container known, in creation order. */
  list(): ContainerInfo[];
  get(id: string): ContainerInfo | undefined;
  /** Called whenever a container exits (by itself or when stopped). */
  onExit(listener: (info: ContainerInfo) => void): void;
  /** Streams a container's log (the latest run of podUid/containerName, or the one before). Returns cancel. */
  logs(podUid: string, containerName: string, options: LogOptions, sink: LogSink): () => void;
  /** Stops watching processes and rotating logs; leaves the containers running. */
  close(): Promise<void>;
}
