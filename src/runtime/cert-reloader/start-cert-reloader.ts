// The cert-reloader at work: the SVID client writes the files; after every renewal the process
// named by --pid-file gets SIGHUP, which makes nats-server reload its certificate, key and trust
// bundle while keeping its connections. Before that process has written its pid file there is
// nothing to signal: it reads the files when it starts. Ready while the SVID on disk is valid:
// an expired one (the registrar away too long) makes NATS refuse every client, and says so.
import { readFile } from 'node:fs/promises';
import type { Logger } from '../role/log';
import type { RoleContext, RunningRole } from '../role/role';
import { runningUntilStopped } from '../role/role';
import { startIdentity, svidReadiness } from '../svid/identity';

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

export function startCertReloader(context: RoleContext): Promise<RunningRole> {
  const { options, logger } = context;
  const outputDir = options.string('output-dir');
  if (outputDir === '') throw new Error('--output-dir is required: where to write the SVID');
  const namespace = options.string('mesh-namespace');
  const pidFile = options.string('pid-file');
  let reloads = Promise.resolve();
  const client = startIdentity(options, {
    meshNamespace: namespace,
    outputDir,
    logger,
    onWritten: () => {
      if (pidFile === '') return;
      reloads = reloads.then(async () => void (await signalReload(pidFile, logger)));
    },
  });
  return Promise.resolve(
    runningUntilStopped(
      async () => {
        await client.stop();
        await reloads;
      },
      () => svidReadiness(client),
    ),
  );
}
