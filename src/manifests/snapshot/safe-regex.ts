// The regular expressions policies may hand to nginx: a small, documented subset of PCRE2 (the
// library Debian's nginx compiles `map` regexes with), checked before a pattern ever reaches a
// sidecar. A pattern nginx cannot compile fails `nginx -t` for the whole configuration, so every
// pattern this accepts must compile there, and any pattern it is unsure of is refused with the
// offset and the reason.
//
// Accepted:
// - literals: printable ASCII except the characters below; `\` before any ASCII punctuation or
//   space makes it literal; \t \n \r \f and \xHH (exactly two hex digits);
// - . ^ $ and the types \d \D \w \W \s \S, the assertions \b \B (outside classes);
// - classes [..] and [^..] of literals, types and ranges lo-hi (lo <= hi, both single
//   characters); a - first or last is literal;
// - groups (..) and (?:..), alternation |;
// - quantifiers * + ? {n} {n,} {n,m} (n <= m <= SAFE_REGEX_MAX_REPEAT), each optionally lazy (?).
// Refused: lookaround, named groups, inline options and every other (? form; backreferences and
// every other letter escape; possessive and stacked quantifiers; a quantifier after nothing
// repeatable (which also keeps a leading * from turning nginx's "~" into the caseless "~*");
// unescaped { } ] outside their syntax and [ inside a class (POSIX [:name:]); the quote
// characters, ;, control characters and non-ASCII (write \xHH), so the pattern can never end
// the configuration token it is printed in; and $ followed by a name or digit, which nginx would
// read as a variable wherever it interpolates a pattern and which can never match as an anchor.
// Bounds: SAFE_REGEX_MAX_LENGTH characters, SAFE_REGEX_MAX_DEPTH nested groups, and an estimate
// of PCRE2's compiled size (bounded repeats copy their item) of at most SAFE_REGEX_MAX_COST bytes,
// well inside the 64 KiB a PCRE2 built with its default link size compiles. Pure.
import {
  SAFE_REGEX_MAX_COST,
  SAFE_REGEX_MAX_DEPTH,
  SAFE_REGEX_MAX_LENGTH,
  SAFE_REGEX_MAX_REPEAT,
} from '../constants';

/** Why a pattern is refused: the character offset (from 0) and a short reason. */
export interface RegexRefusal {
  readonly offset: number;
  readonly reason: string;
}

/**
 * Estimated compiled bytes of an item, whether a quantifier may follow it, and whether it is a
 * group: PCRE2 repeats a single character, type or class with one opcode, but copies a group
 * once per bounded repetition.
 */
interface Item {
  readonly cost: number;
  readonly repeatable: boolean;
  readonly group?: boolean;
}

/** PCRE2's code for a group: bracket and ket, each with a two-byte link. */
const GROUP_COST = 6;
/** A class: one opcode and a 256-bit map. */
const CLASS_COST = 33;
const LITERAL_COST = 2;
/** A repeat opcode with its bounds. */
const REPEAT_COST = 5;
const TYPE_COST = 1;
const CLASS_TYPES = new Set(['d', 'D', 'w', 'W', 's', 'S']);
const CONTROL_ESCAPES: Readonly<Record<string, number>> = { t: 9, n: 10, r: 13, f: 12 };
const HEX = /^[0-9A-Fa-f]{2}$/;
const QUANTIFIER = /^\{([0-9]{1,6})(,([0-9]{0,6}))?\}/;

class Refused extends Error {
  constructor(
    readonly offset: number,
    readonly reason: string,
  ) {
    super(reason);
  }
}

/** Whether the character can never appear in a pattern, escaped or not. */
function forbidden(char: string): boolean {
  const code = char.charCodeAt(0);
  return code < 0x20 || code > 0x7e || char === '"' || char === "'" || char === ';';
}

function forbiddenReason(char: string): string {
  return `character ${JSON.stringify(char)} is not allowed (no quotes, ";", control characters or non-ASCII; write \\xHH)`;
}

const isPunctuation = (char: string): boolean => /^[ -/:-@[-`{-~]$/.test(char);

/** A recursive-descent reader of one pattern; each method leaves `at` after what it read. */
class Reader {
  at = 0;

  constructor(private readonly text: string) {}

  private peek(ahead = 0): string | undefined {
    return this.text[this.at + ahead];
  }

  /** alternative ( | alternative )*, up to a ) or the end. */
  alternation(depth: number): number {
    let cost = this.sequence(depth);
    while (this.peek() === '|') {
      this.at += 1;
      cost += 1 + this.sequence(depth);
    }
    return cost;
  }

  private sequence(depth: number): number {
    let cost = 0;
    for (let char = this.peek(); char !== undefined && char !== '|' && char !== ')';) {
      const item = this.atom(depth);
      cost += this.quantified(item);
      char = this.peek();
    }
    return cost;
  }

  /** The item's cost once the quantifier after it, if any, is read. */
  private quantified(item: Item): number {
    const start = this.at;
    const char = this.peek();
    let copies: number;
    if (char === '*' || char === '+' || char === '?') {
      this.at += 1;
      copies = 2;
    } else if (char === '{') {
      copies = this.bounds();
    } else {
      return item.cost;
    }
    if (!item.repeatable) throw new Refused(start, 'quantifier does not follow a repeatable item');
    if (this.peek() === '?') this.at += 1;
    if (/^[*+?{]$/.test(this.peek() ?? ''))
      throw new Refused(this.at, 'quantifier follows a quantifier (use a group)');
    return item.group === true ? item.cost * copies + REPEAT_COST : item.cost + REPEAT_COST;
  }

  /** Reads {n}, {n,} or {n,m} at `at`; how many copies of a group PCRE2 compiles for it. */
  private bounds(): number {
    const start = this.at;
    const match = QUANTIFIER.exec(this.text.slice(this.at));
    if (match === null) throw new Refused(start, 'a literal "{" must be escaped as \\{');
    const min = Number(match[1]);
    const max = match[2] === undefined ? min : match[3] === '' ? undefined : Number(match[3]);
    if (max !== undefined && max < min)
      throw new Refused(start, `quantifier ${match[0]} has its bounds out of order`);
    if (Math.max(min, max ?? 0) > SAFE_REGEX_MAX_REPEAT)
      throw new Refused(
        start,
        `quantifier ${match[0]} repeats more than ${SAFE_REGEX_MAX_REPEAT} times`,
      );
    this.at += match[0].length;
    return Math.max(min, max ?? min + 1, 1);
  }

  /** An anchor ^ or $ at `at`. */
  private anchor(): Item {
    const next = this.peek(1);
    if (this.peek() === '$' && next !== undefined && /^[A-Za-z0-9_{]$/.test(next))
      throw new Refused(this.at, '"$" followed by a name reads as an nginx variable; write \\$');
    this.at += 1;
    return { cost: 1, repeatable: false };
  }

  private atom(depth: number): Item {
    const start = this.at;
    const char = this.peek() ?? '';
    switch (char) {
      case '(':
        return this.group(depth);
      case '[':
        return this.characterClass();
      case '\\':
        return this.escape(false).item;
      case '.':
        this.at += 1;
        return { cost: TYPE_COST, repeatable: true };
      case '^':
      case '$':
        return this.anchor();
      case '*':
      case '+':
      case '?':
        throw new Refused(start, 'quantifier does not follow a repeatable item');
      case '{':
      case '}':
      case ']':
        throw new Refused(start, `a literal "${char}" must be escaped as \\${char}`);
      default:
        if (forbidden(char)) throw new Refused(start, forbiddenReason(char));
        this.at += 1;
        return { cost: LITERAL_COST, repeatable: true };
    }
  }

  private group(depth: number): Item {
    const start = this.at;
    if (depth >= SAFE_REGEX_MAX_DEPTH)
      throw new Refused(start, `groups nest deeper than ${SAFE_REGEX_MAX_DEPTH}`);
    this.at += 1;
    if (this.peek() === '?') {
      if (this.peek(1) !== ':')
        throw new Refused(
          start,
          'only (?: groups are supported (no lookaround, named groups or options)',
        );
      this.at += 2;
    }
    const cost = this.alternation(depth + 1);
    if (this.peek() !== ')') throw new Refused(start, 'group is not closed');
    this.at += 1;
    return { cost: cost + GROUP_COST, repeatable: true, group: true };
  }

  /**
   * One escape at `at`. char is the code of the single character it stands for, when it stands
   * for one (what a class range needs).
   */
  private escape(inClass: boolean): { item: Item; char?: number } {
    const start = this.at;
    const next = this.peek(1);
    if (next === undefined) throw new Refused(start, 'pattern ends with a lone backslash');
    if (forbidden(next)) throw new Refused(start + 1, forbiddenReason(next));
    this.at += 2;
    if (CLASS_TYPES.has(next)) return { item: { cost: TYPE_COST, repeatable: true } };
    if (next === 'b' || next === 'B') {
      if (inClass) throw new Refused(start, `\\${next} is not supported in a class`);
      return { item: { cost: 1, repeatable: false } };
    }
    const control = CONTROL_ESCAPES[next];
    if (control !== undefined)
      return { item: { cost: LITERAL_COST, repeatable: true }, char: control };
    if (next === 'x') {
      const hex = this.text.slice(this.at, this.at + 2);
      if (!HEX.test(hex)) throw new Refused(start, '\\x must be followed by two hex digits');
      this.at += 2;
      return { item: { cost: LITERAL_COST, repeatable: true }, char: parseInt(hex, 16) };
    }
    if (isPunctuation(next))
      return { item: { cost: LITERAL_COST, repeatable: true }, char: next.charCodeAt(0) };
    if (/^[0-9]$/.test(next)) throw new Refused(start, 'backreferences are not supported');
    throw new Refused(start, `escape \\${next} is not supported`);
  }

  /** One member of a class at `at`: its single character, or undefined for a type (\d). */
  private classMember(): number | undefined {
    const start = this.at;
    const char = this.peek();
    if (char === undefined) throw new Refused(start, 'character class is not closed');
    if (char === '\\') return this.escape(true).char;
    if (char === '[') throw new Refused(start, 'a literal "[" in a class must be escaped as \\[');
    if (forbidden(char)) throw new Refused(start, forbiddenReason(char));
    this.at += 1;
    return char.charCodeAt(0);
  }

  private characterClass(): Item {
    const start = this.at;
    this.at += 1;
    if (this.peek() === '^') this.at += 1;
    if (this.peek() === ']')
      throw new Refused(this.at, 'a "]" first in a class must be escaped as \\]');
    while (this.peek() !== ']') {
      if (this.peek() === undefined) throw new Refused(start, 'character class is not closed');
      const memberAt = this.at;
      const low = this.classMember();
      if (this.peek() !== '-' || this.peek(1) === ']' || this.peek(1) === undefined) continue;
      if (low === undefined)
        throw new Refused(memberAt, 'a range cannot start at a character type');
      this.at += 1;
      const highAt = this.at;
      const high = this.classMember();
      if (high === undefined) throw new Refused(highAt, 'a range cannot end at a character type');
      if (high < low) throw new Refused(memberAt, 'range is out of order');
    }
    this.at += 1;
    return { cost: CLASS_COST, repeatable: true };
  }

  /** The whole pattern; throws Refused. */
  pattern(): void {
    const cost = this.alternation(0);
    if (this.peek() === ')') throw new Refused(this.at, 'unmatched ")"');
    if (cost > SAFE_REGEX_MAX_COST)
      throw new Refused(0, `pattern would compile to more than ${SAFE_REGEX_MAX_COST} bytes`);
  }
}

/** Why nginx must not be given `pattern`, or undefined when it is in the accepted subset. */
export function findRegexProblem(pattern: string): RegexRefusal | undefined {
  if (pattern.length > SAFE_REGEX_MAX_LENGTH)
    return {
      offset: SAFE_REGEX_MAX_LENGTH,
      reason: `longer than ${SAFE_REGEX_MAX_LENGTH} characters`,
    };
  try {
    new Reader(pattern).pattern();
    return undefined;
  } catch (error) {
    if (error instanceof Refused) return { offset: error.offset, reason: error.reason };
    throw error;
  }
}
