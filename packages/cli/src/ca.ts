// The cluster's CA certificate, read from the store with the cluster secret (the masters put it
// there on first start): what a kubeconfig embeds and what an agent verifies masters with.
import { CA_KEY } from '@flotilla/api';
import { KvClient } from '@flotilla/store';
import { clientUrl, type ClusterFile } from './cluster-file.ts';

export async function readClusterCa(file: ClusterFile, name: string, timeoutMs = 10_000): Promise<string> {
  const client = new KvClient({ endpoints: file.masters.map(clientUrl), secret: file.secret, name, timeoutMs });
  try {
    const found = await client.get(CA_KEY);
    const kv = found.kvs[0];
    if (kv === undefined) throw new Error('the cluster has no certificate authority yet: start its masters (flotilla up) and try again');
    return (JSON.parse(new TextDecoder().decode(kv.value)) as { cert: string }).cert;
  } finally {
    client.close();
  }
}
