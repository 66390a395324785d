// Orders test files by tier, and within a tier as Jest's own sequencer does (failed first, then
// slowest first). `npm test` runs two Jest processes side by side (scripts/test-all.mjs): one runs
// the processor-bound unit and integration tiers first, then the files that start clusters of
// their own and the protocol e2e files on a second test cluster; the other runs the cluster and
// adversarial tiers, then the e2e and faults tiers, whose bounds are the most sensitive to load,
// once the first has ended (test/support/after-other-run.ts).
'use strict';

const Sequencer = require('@jest/test-sequencer').default;

const RANK = { 'own-cluster': 1, 'e2e-protocols': 1, adversarial: 1, e2e: 2, faults: 3 };

/** tests in tier order, keeping the order they came in within a tier. */
function byTier(tests) {
  const rank = (test) => RANK[test.context.config.displayName?.name] ?? 0;
  return tests
    .map((test, index) => ({ test, index }))
    .sort((a, b) => rank(a.test) - rank(b.test) || a.index - b.index)
    .map(({ test }) => test);
}

class TierSequencer extends Sequencer {
  async sort(tests) {
    return byTier(await super.sort(tests));
  }
}

module.exports = TierSequencer;
module.exports.byTier = byTier;
