// Orders test files so that, in one Jest process, the unit, integration and cluster tiers run
// before the own-cluster, e2e, faults and adversarial tiers, and otherwise as Jest's own sequencer
// does (failed first, then slowest first). `npm test` runs two processes side by side: the
// processor-bound unit and integration tiers, then the files that start clusters of their own,
// beside the cluster tier, then the tiers that load the machine most (scripts/test-all.mjs).
'use strict';

const Sequencer = require('@jest/test-sequencer').default;

const LATE_TIERS = new Set(['own-cluster', 'e2e', 'faults', 'adversarial']);

class TierSequencer extends Sequencer {
  async sort(tests) {
    const sorted = await super.sort(tests);
    const late = (test) => (LATE_TIERS.has(test.context.config.displayName?.name) ? 1 : 0);
    return sorted
      .map((test, index) => ({ test, index }))
      .sort((a, b) => late(a.test) - late(b.test) || a.index - b.index)
      .map(({ test }) => test);
  }
}

module.exports = TierSequencer;
