// Under `npm test` (scripts/test-all.mjs), the e2e and faults tiers measure traffic against
// bounds a busy machine can break, so they start only when the other Jest process, the one beside
// them, has ended: NMK_TEST_AFTER_PID names it. Run alone, they start at once.
import { existsSync } from 'node:fs';

/** Longest wait for the other process: past it, the tier runs anyway. */
const WAIT_MS = 40 * 60_000;

const pid = process.env.NMK_TEST_AFTER_PID;

if (pid !== undefined && /^\d+$/.test(pid)) {
  beforeAll(async () => {
    if (!existsSync(`/proc/${pid}`)) return;
    process.stderr.write(`waiting for the other test process (pid ${pid}) to end\n`);
    const started = Date.now();
    while (existsSync(`/proc/${pid}`) && Date.now() - started < WAIT_MS)
      await new Promise((resolve) => setTimeout(resolve, 1_000));
    process.stderr.write(`waited ${Math.round((Date.now() - started) / 1000)} s for it\n`);
  }, WAIT_MS + 60_000);
}
