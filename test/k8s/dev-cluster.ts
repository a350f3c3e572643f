// Keeps the development control plane running until SIGTERM or SIGINT; started in the
// background by `scripts/dev-cluster up` (`make dev-cluster`). Writes <dir>/ready (the admin
// kubeconfig's path) once everything is up, and removes <dir> when it stops.
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEV_CLUSTER_CONTROLLERS, startControlPlane } from '../helpers/kube.ts';

const env = process.env;
const dir = env.FAILWATCH_DEV_CLUSTER_DIR;
if (!dir) throw new Error('FAILWATCH_DEV_CLUSTER_DIR is not set');
const port = (name: string, fallback: number) => Number(env[name] ?? fallback);

const cp = await startControlPlane({
  dir,
  apiserverPort: port('FAILWATCH_APISERVER_PORT', 16443),
  etcdClientPort: port('FAILWATCH_ETCD_CLIENT_PORT', 12379),
  etcdPeerPort: port('FAILWATCH_ETCD_PEER_PORT', 12380),
  controllers: DEV_CLUSTER_CONTROLLERS,
  timeoutMs: 120_000,
});
writeFileSync(join(dir, 'ready'), `${cp.kubeconfigPath}\n`);
console.error(`dev-cluster: up, ${cp.server}, kubeconfig ${cp.kubeconfigPath}`);

const keepAlive = setInterval(() => {}, 1 << 30);
let stopping = false;
const shutdown = async (signal: string): Promise<void> => {
  if (stopping) return;
  stopping = true;
  console.error(`dev-cluster: ${signal}, stopping`);
  await cp.stop();
  rmSync(dir, { recursive: true, force: true });
  clearInterval(keepAlive);
  console.error('dev-cluster: stopped');
};
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));
