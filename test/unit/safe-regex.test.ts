// The regular expressions policies may give nginx: the documented PCRE2 subset is accepted, and
// everything else is refused with the offset and the reason. (That every accepted pattern
// compiles in the real nginx is test/integration/policy-regex-nginx.test.ts.)
import { findRegexProblem } from '../../src/manifests/snapshot/safe-regex';

export const ACCEPTED = [
  '/items/[0-9]+',
  '/v1/.*',
  '^admin$',
  '/api/(?:users|orders)/\\d{1,8}',
  '/a(b|c)*?d+?e??',
  '[^/]{2,}',
  '[a-zA-Z0-9_.-]+',
  '[-a]',
  '[\\]\\[\\\\]',
  '\\.\\*\\+\\?\\(\\)\\{\\}\\|\\^\\$\\/',
  '\\x41\\t\\w\\W\\s\\S\\D\\b\\B',
  '(?:)',
  'a||b',
  '|',
  'a{0}b{3,}c{2,5}',
  '/path with space/#frag',
  '(((((a)))))',
  '(?:[a-z]{100}){10}',
  '(?:(?:abc){50}){20}',
  'foo$|bar$',
  '[--/]',
  '[a-z-0]',
];

export const REFUSED: [string, number, RegExp][] = [
  ['(', 0, /group is not closed/],
  [')|(.*', 0, /unmatched "\)"/],
  ['a)', 1, /unmatched/],
  ['(?=a)', 0, /only \(\?: groups/],
  ['(?<n>a)', 0, /only \(\?: groups/],
  ['(?i)a', 0, /only \(\?: groups/],
  ['(a)\\1', 3, /backreferences/],
  ['\\k<n>', 0, /escape \\k/],
  ['\\p{L}', 0, /escape \\p/],
  ['\\Qa\\E', 0, /escape \\Q/],
  ['*a', 0, /does not follow a repeatable/],
  ['^*', 1, /does not follow a repeatable/],
  ['\\b+', 2, /does not follow a repeatable/],
  ['a**', 2, /follows a quantifier/],
  ['a*+', 2, /follows a quantifier/],
  ['a{2}{3}', 4, /follows a quantifier/],
  ['a{3,2}', 1, /out of order/],
  ['a{1001}', 1, /more than 1000/],
  ['a{,3}', 1, /must be escaped as \\\{/],
  ['a{', 1, /must be escaped/],
  ['}', 0, /must be escaped as \\\}/],
  [']', 0, /must be escaped as \\\]/],
  ['[a', 0, /class is not closed/],
  ['[]a]', 1, /first in a class/],
  ['[^]', 2, /first in a class/],
  ['[[:alpha:]]', 1, /"\[" in a class/],
  ['[z-a]', 1, /out of order/],
  ['[\\d-z]', 1, /cannot start at a character type/],
  ['[a-\\w]', 3, /cannot end at a character type/],
  ['[\\b]', 1, /not supported in a class/],
  ['\\', 0, /lone backslash/],
  ['\\x4', 0, /two hex digits/],
  ['\\x{41}', 0, /two hex digits/],
  ['a"b', 1, /not allowed/],
  ["a'b", 1, /not allowed/],
  ['a;b', 1, /not allowed/],
  ['a\\"', 2, /not allowed/],
  ['a\nb', 1, /not allowed/],
  ['a\tb', 1, /not allowed/],
  ['é', 0, /non-ASCII/],
  ['a$host', 1, /nginx variable/],
  ['a${x}', 1, /nginx variable/],
  ['$1', 0, /nginx variable/],
  ['x'.repeat(1025), 1024, /longer than 1024/],
  ['('.repeat(33) + ')'.repeat(33), 32, /deeper than 32/],
  ['(?:(?:[a-z]{1000}){1000})', 0, /more than 16384 bytes/],
];

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
