// Orders test files so the cluster tier runs before the e2e, faults and adversarial tiers, and
// otherwise as Jest's own sequencer does (failed first, then slowest first). `npm test` runs the
// unit and integration tiers beside the cluster tier, and the tiers that load the machine most
// after both.
'use strict';

const Sequencer = require('@jest/test-sequencer').default;

const LATE_TIERS = new Set(['e2e', 'faults', 'adversarial']);

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
