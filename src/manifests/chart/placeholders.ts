// Placeholders: marks inside rendered manifests that stand for a Helm expression. The chart is
// built by rendering the install plan with placeholders where a chart value goes, then printing
// every placeholder as the Go-template expression it stands for. Pure.

const OPEN = '\u27e6';
const CLOSE = '\u27e7';

/** A chart value, by its path under .Values ("mtls.mode"). */
export function valueOf(path: string): string {
  return `${OPEN}v:${path}${CLOSE}`;
}

/** Any Helm expression (".Release.Namespace", an include). */
export function expressionOf(expression: string): string {
  return `${OPEN}e:${expression}${CLOSE}`;
}

/** base64 of a text that may itself hold placeholders (the encode function of the install plan). */
export function base64Of(text: string): string {
  return `${OPEN}b:${text}${CLOSE}`;
}

export function hasPlaceholder(text: string): boolean {
  return text.includes(OPEN);
}

type Part =
  | { readonly kind: 'text'; readonly text: string }
  | { readonly kind: 'value' | 'expression'; readonly text: string }
  | { readonly kind: 'base64'; readonly parts: readonly Part[] };

/** The parts of a text, up to the CLOSE that ends the enclosing placeholder (or the end). */
function parseParts(text: string, start: number, nested: boolean): { parts: Part[]; end: number } {
  const parts: Part[] = [];
  let literal = '';
  let index = start;
  const flush = (): void => {
    if (literal !== '') parts.push({ kind: 'text', text: literal });
    literal = '';
  };
  while (index < text.length) {
    const char = text[index] ?? '';
    if (char === CLOSE && nested) {
      flush();
      return { parts, end: index + 1 };
    }
    if (char !== OPEN) {
      literal += char;
      index += 1;
      continue;
    }
    flush();
    const kind = text.slice(index + 1, index + 3);
    if (kind === 'b:') {
      const inner = parseParts(text, index + 3, true);
      parts.push({ kind: 'base64', parts: inner.parts });
      index = inner.end;
      continue;
    }
    const close = text.indexOf(CLOSE, index);
    if (close < 0 || (kind !== 'v:' && kind !== 'e:')) {
      throw new Error(`malformed placeholder in ${JSON.stringify(text)}`);
    }
    const body = text.slice(index + 3, close);
    parts.push({ kind: kind === 'v:' ? 'value' : 'expression', text: body });
    index = close + 1;
  }
  if (nested) throw new Error(`unclosed placeholder in ${JSON.stringify(text)}`);
  flush();
  return { parts, end: index };
}

/** A Go string literal. */
function goString(text: string): string {
  return JSON.stringify(text);
}

function expressionOfParts(parts: readonly Part[]): string {
  const single = parts.length === 1 ? parts[0] : undefined;
  if (single !== undefined && single.kind !== 'text') return operand(single);
  let format = '';
  const args: string[] = [];
  for (const part of parts) {
    if (part.kind === 'text') {
      format += part.text.replace(/%/g, '%%');
    } else {
      format += '%v';
      args.push(operand(part));
    }
  }
  return args.length === 0 ? goString(format) : `(printf ${goString(format)} ${args.join(' ')})`;
}

function operand(part: Part): string {
  switch (part.kind) {
    case 'text':
      return goString(part.text);
    case 'value':
      return `.Values.${part.text}`;
    case 'expression':
      return part.text.includes(' ') ? `(${part.text})` : part.text;
    case 'base64':
      return `(${expressionOfParts(part.parts)} | b64enc)`;
  }
}

/**
 * The Helm expression whose value is this text: a lone value keeps its type (a boolean stays a
 * boolean); text around placeholders is joined with printf.
 */
export function helmExpression(text: string): string {
  return expressionOfParts(parseParts(text, 0, false).parts);
}

/** The action that prints this text as a JSON (and so YAML flow) scalar. */
export function jsonAction(text: string): string {
  return `{{ ${helmExpression(text)} | toJson }}`;
}
