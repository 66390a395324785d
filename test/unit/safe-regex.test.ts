// The regular expressions policies may give nginx: the documented PCRE2 subset is accepted, and
// everything else is refused with the offset and the reason. (That every accepted pattern
// compiles in the real nginx is test/integration/policy-regex-nginx.test.ts.)
import { findRegexProblem } from '../../src/manifests/snapshot/safe-regex';
import { ACCEPTED, REFUSED } from '../support/policy-regexes';

it.each(ACCEPTED)('accepts %j', (pattern) => {
  expect(findRegexProblem(pattern)).toBeUndefined();
  // The subset is also valid JavaScript, which shares its syntax: a cheap second opinion.
  expect(() => new RegExp(pattern)).not.toThrow();
});

it.each(REFUSED)('refuses %j at offset %i', (pattern, offset, reason) => {
  const problem = findRegexProblem(pattern);
  expect(problem?.offset).toBe(offset);
  expect(problem?.reason).toMatch(reason);
});

it('never throws and always answers in one line, whatever the input', () => {
  let seed = 7;
  const next = (): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31);
  const alphabet = 'ab()[]{}|*+?^$.\\-:=<!,0123dwxk"; \n';
  for (let round = 0; round < 5000; round += 1) {
    const length = next() % 12;
    let pattern = '';
    for (let index = 0; index < length; index += 1) pattern += alphabet[next() % alphabet.length];
    const problem = findRegexProblem(pattern);
    if (problem === undefined) expect(() => new RegExp(pattern)).not.toThrow();
    else expect(problem.reason).not.toContain('\n');
  }
});
