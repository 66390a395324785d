// The agent's memory-reducing collection (src/runtime/agent/heap-trim.ts): one full collection
// after the last of a burst of schedule() calls, and none after close(). What it saves is the
// dataplane bench's sidecar_pss_mib_per_pod_10.
import { createHeapTrimmer } from '../../src/runtime/agent/heap-trim';
import { createJsonLogger } from '../../src/runtime/role/log';

const DELAY_MS = 50;
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function recordingLogger(): { logger: ReturnType<typeof createJsonLogger>; trims: object[] } {
  const trims: object[] = [];
  const logger = createJsonLogger({
    level: 'debug',
    now: () => new Date(0),
    out: {
      write: (line: string) => {
        const entry = JSON.parse(line) as { msg: string };
        if (entry.msg === 'heap trimmed') trims.push(entry);
      },
    },
  });
  return { logger, trims };
}

it('collects once, after the last of several schedules, and reports what it took', async () => {
  const { logger, trims } = recordingLogger();
  const heap = createHeapTrimmer(logger, DELAY_MS);
  heap.schedule();
  await sleep(DELAY_MS / 2);
  heap.schedule();
  await sleep(DELAY_MS / 2);
  heap.schedule();
  expect(trims).toHaveLength(0);
  await sleep(DELAY_MS * 3);
  expect(trims).toHaveLength(1);
  const trim = trims[0] as Record<string, unknown>;
  for (const field of ['durationMs', 'rssBeforeMib', 'rssMib'])
    expect(typeof trim[field]).toBe('number');
  heap.close();
});

it('does not collect after close', async () => {
  const { logger, trims } = recordingLogger();
  const heap = createHeapTrimmer(logger, DELAY_MS);
  heap.schedule();
  heap.close();
  await sleep(DELAY_MS * 3);
  expect(trims).toHaveLength(0);
});
