// Targets and their verdicts, printed alike by every benchmark: each figure that has a target
// prints one line `<figure> <value> (target <how> <limit>: met|missed)`. A missed target is a
// finding, not a failure: it leaves the exit code alone, which only errors and broken sanity
// checks set.

/** @typedef {'<' | '<=' | '>' | '>=' | '='} Comparison */
/** @typedef {{ readonly how: Comparison, readonly limit: number }} Target */

/**
 * Whether value meets target.
 * @param {number} value
 * @param {Target} target
 * @returns {boolean}
 */
export function isMet(value, target) {
  switch (target.how) {
    case '<':
      return value < target.limit;
    case '<=':
      return value <= target.limit;
    case '>':
      return value > target.limit;
    case '>=':
      return value >= target.limit;
    case '=':
      return value === target.limit;
    default:
      throw new Error(`unknown comparison "${String(target.how)}"`);
  }
}

/**
 * @param {number} value
 * @param {Target} target
 * @returns {'met' | 'missed'}
 */
export function verdictOf(value, target) {
  return isMet(value, target) ? 'met' : 'missed';
}

/**
 * The verdict line of one figure: `<figure> <value> (target <how> <limit>: met|missed)`.
 * @param {string} figure
 * @param {number} value
 * @param {Target} target
 * @param {number} [digits] decimals of the value (default 3)
 * @returns {string}
 */
export function targetLine(figure, value, target, digits = 3) {
  return `${figure} ${value.toFixed(digits)} (target ${target.how} ${target.limit}: ${verdictOf(value, target)})`;
}
