export { loadClusterFile, parseClusterFile, findMaster, findWorker, clientUrl, peerUrl, ClusterFileError, yamlDepth, MAX_CLUSTER_FILE_DEPTH, DEFAULT_TIMING, type ClusterFile, type MasterSpec, type WorkerSpec } from './cluster-file.ts';
export { collectStatus, type MasterStatus } from './commands/status.ts';
