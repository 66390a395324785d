// What crosses a pod's interface to and from one peer while a test sends traffic: capture.py
// inside the pod's network namespace, started before the traffic and stopped after it, so the
// counts cover every byte of it however slow the machine is.
import { execa } from 'execa';
import { join } from 'node:path';
import { inNetns } from '../../cluster/support/node-access';

export interface WireCounts {
  segments: number;
  plaintextHttp: number;
  tlsRecords: number;
  bytes: number;
  needle?: number;
}

export interface WireCapture {
  /** Ends the capture and resolves with its counts; throws with its stderr when it printed none. */
  stop(): Promise<{ counts: WireCounts; raw: string }>;
}

/** Upper bound of one capture, should stop never be called. */
const CAPTURE_LIMIT_S = 60;
const READY_TIMEOUT_MS = 20_000;

/** Starts capturing on eth0 of netns, and resolves once the capture socket is bound. */
export async function startWireCapture(
  netns: string,
  peerIp: string,
  needle?: string,
): Promise<WireCapture> {
  const script = join(__dirname, '..', 'capture.py');
  const args = [script, 'eth0', peerIp, String(CAPTURE_LIMIT_S), ...(needle ? [needle] : [])];
  const child = execa(...inNetns(netns, ['python3', ...args]), {
    reject: false,
    timeout: (CAPTURE_LIMIT_S + 10) * 1000,
  });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`capture.py was not ready within ${READY_TIMEOUT_MS}ms`)),
      READY_TIMEOUT_MS,
    );
    let seen = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      seen += chunk.toString();
      if (seen.includes('ready')) {
        clearTimeout(timer);
        resolve();
      }
    });
    void child.then((ended) => {
      clearTimeout(timer);
      reject(new Error(`capture.py ended before it was ready: ${ended.stderr}`));
    });
  });
  return {
    async stop() {
      child.kill('SIGTERM');
      const ended = await child;
      const raw = ended.stdout.trim();
      if (ended.exitCode !== 0 || raw === '')
        throw new Error(`capture.py failed (exit ${ended.exitCode}): ${ended.stderr}`);
      return { counts: JSON.parse(raw) as WireCounts, raw };
    },
  };
}
