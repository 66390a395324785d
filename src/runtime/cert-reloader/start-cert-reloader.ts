// The cert-reloader at work: the SVID client writes the files; after every renewal the process
// named by --pid-file gets SIGHUP, which makes nats-server reload its certificate, key and trust
// bundle while keeping its connections. Before that process has written its pid file there is
// nothing to signal: it reads the files when it starts. Ready while the SVID on disk is valid:
// an expired one (the registrar away too long) makes NATS refuse every client, and says so.
// With --nats-config it also keeps nats.conf's users equal to the cluster's ServiceAccounts
// (nats-users.ts), with a SIGHUP after each change, and is ready only once that file exists.
import { readFile } from 'node:fs/promises';
import { NATS_CLIENT_PORT, NATS_MONITOR_PORT } from '../../manifests/constants';
import { trustDomainOf } from '../../manifests/registrar/svid-policy';
import { systemClock } from '../clock';
import { createKubeAccess } from '../kube/access';
import type { KubeObject } from '../kube/client';
import { startWatch } from '../kube/watch';
import type { Logger } from '../role/log';
import type { RoleContext, RunningRole } from '../role/role';
import { runningUntilStopped } from '../role/role';
import { startIdentity, svidReadiness } from '../svid/identity';
import type { NatsUsers } from './nats-users';
import { startNatsUsers } from './nats-users';

const KUBE_TIMEOUT_MS = 30_000;

/** Sends SIGHUP to the process whose pid the file holds; false when there is none yet. */
export async function signalReload(pidFile: string, logger: Logger): Promise<boolean> {
  let text: string;
  try {
    text = await readFile(pidFile, 'utf8');
  } catch {
    logger.info('no process to reload yet', { pidFile });
    return false;
  }
  const pid = Number.parseInt(text.trim(), 10);
  if (!Number.isInteger(pid) || pid <= 1) {
    logger.warn('pid file holds no process id', { pidFile, content: text.slice(0, 40) });
    return false;
  }
  try {
    process.kill(pid, 'SIGHUP');
  } catch (error) {
    logger.warn('could not signal the process to reload', { pid, error: String(error) });
    return false;
  }
  logger.info('asked the process to reload its certificate', { pid });
  return true;
}

export async function startCertReloader(context: RoleContext): Promise<RunningRole> {
  const { options, logger } = context;
  const outputDir = options.string('output-dir');
  if (outputDir === '') throw new Error('--output-dir is required: where to write the SVID');
  const namespace = options.string('mesh-namespace');
  const pidFile = options.string('pid-file');
  const natsConfig = options.string('nats-config');
  let reloads = Promise.resolve();
  const reload = (): void => {
    if (pidFile === '') return;
    reloads = reloads.then(async () => void (await signalReload(pidFile, logger)));
  };
  const client = startIdentity(options, {
    meshNamespace: namespace,
    outputDir,
    logger,
    onWritten: reload,
  });
  let users: NatsUsers | undefined;
  if (natsConfig !== '') {
    // Loads the kubeconfig only: no request is made here.
    const kube = await createKubeAccess(process.env).connect({
      kubeconfig: process.env.KUBECONFIG ?? '',
      timeoutMs: KUBE_TIMEOUT_MS,
    });
    users = startNatsUsers({
      path: natsConfig,
      layout: {
        clientPort: NATS_CLIENT_PORT,
        monitorPort: NATS_MONITOR_PORT,
        pidFile,
        tlsDir: outputDir,
      },
      meshNamespace: namespace,
      trustDomain: client.ready.then((svid) => trustDomainOf(svid.spiffeId)),
      watchAccounts: (onUpdate) =>
        startWatch<KubeObject>(kube, {
          path: '/api/v1/serviceaccounts',
          onUpdate,
          clock: systemClock,
          random: Math.random,
          logger,
        }),
      onWritten: reload,
      logger,
    });
  }
  return runningUntilStopped(
    async () => {
      await users?.stop();
      await client.stop();
      await reloads;
    },
    () => {
      const svid = svidReadiness(client);
      return svid.ready && users !== undefined ? users.readiness() : svid;
    },
  );
}
