export { loadClusterFile, parseClusterFile, findMaster, clientUrl, peerUrl, ClusterFileError, DEFAULT_TIMING, type ClusterFile, type MasterSpec } from './cluster-file.ts';
export { collectStatus, type MasterStatus } from './commands/status.ts';
