// A merged template (merge.ts) printed as Helm template text: YAML in block style, with each
// conditional entry or item between `{{- if }}` and `{{- end }}` lines, scalars as JSON (a valid
// YAML flow scalar, so no value needs YAML quoting rules), placeholders as Go-template actions,
// and strings that hold a JSON document as literal blocks of templated JSON. Pure.
import type { Template, TemplateEntry, TemplateItem } from './merge';
import { hasPlaceholder, jsonAction } from './placeholders';

type Scalar = null | boolean | number | string;

function scalarText(value: Scalar): string {
  if (typeof value === 'string' && hasPlaceholder(value)) return jsonAction(value);
  return JSON.stringify(value);
}

/** YAML 1.1 (what Helm parses with) reads these plain words as booleans, nulls or numbers. */
const PLAIN_KEY = /^[A-Za-z_./][A-Za-z0-9_./-]*$/;
const YAML11_SPECIAL = /^(y|n|yes|no|on|off|true|false|null|~)$/i;

function keyText(key: string): string {
  if (hasPlaceholder(key)) return jsonAction(key);
  return PLAIN_KEY.test(key) && !YAML11_SPECIAL.test(key) ? key : JSON.stringify(key);
}

function inlineChoice(
  options: readonly { readonly condition: string; readonly text: string }[],
  otherwise: string,
): string {
  const branches = options.map(
    (option, index) => `{{ ${index === 0 ? 'if' : 'else if'} ${option.condition} }}${option.text}`,
  );
  return `${branches.join('')}{{ else }}${otherwise}{{ end }}`;
}

/** The node's text when it fits on the line after a key (scalars, choices of scalars). */
function inlineText(node: Template): string | undefined {
  if (node.kind === 'scalar') return scalarText(node.value);
  if (node.kind !== 'choice') return undefined;
  const otherwise = inlineText(node.otherwise);
  const options = node.options.map((option) => ({
    condition: option.condition,
    text: inlineText(option.node),
  }));
  if (otherwise === undefined || options.some((option) => option.text === undefined)) {
    return undefined;
  }
  return inlineChoice(options as { condition: string; text: string }[], otherwise);
}

// ---- JSON -------------------------------------------------------------------------------

function jsonText(node: Template, indent: string): string {
  switch (node.kind) {
    case 'scalar':
      return scalarText(node.value);
    case 'choice':
      return inlineChoice(
        node.options.map((option) => ({
          condition: option.condition,
          text: jsonText(option.node, indent),
        })),
        jsonText(node.otherwise, indent),
      );
    case 'map':
      return jsonMap(node.entries, indent);
    case 'list':
      return jsonList(node.items, indent);
    case 'json':
      throw new Error('a JSON document inside a JSON document cannot be templated');
  }
}

/** The one condition a collection's optional members share; two different ones cannot be printed. */
function sharedCondition(conditions: readonly (string | undefined)[]): string | undefined {
  const distinct = [...new Set(conditions.filter((c): c is string => c !== undefined))];
  if (distinct.length > 1) {
    throw new Error(`JSON members under different conditions: ${distinct.join('; ')}`);
  }
  return distinct[0];
}

function jsonMap(entries: readonly TemplateEntry[], indent: string): string {
  const condition = sharedCondition(entries.map((entry) => entry.condition));
  const print = (chosen: readonly TemplateEntry[]): string => {
    if (chosen.length === 0) return '{}';
    const inner = `${indent}  `;
    const lines = chosen.map(
      (entry) =>
        `${inner}${hasPlaceholder(entry.key) ? jsonAction(entry.key) : JSON.stringify(entry.key)}: ${jsonText(entry.node, inner)}`,
    );
    return `{\n${lines.join(',\n')}\n${indent}}`;
  };
  const always = entries.filter((entry) => entry.condition === undefined);
  if (condition === undefined) return print(entries);
  return inlineChoice([{ condition, text: print(entries) }], print(always));
}

function jsonList(items: readonly TemplateItem[], indent: string): string {
  const condition = sharedCondition(items.map((item) => item.condition));
  const print = (chosen: readonly TemplateItem[]): string => {
    if (chosen.length === 0) return '[]';
    const inner = `${indent}  `;
    const lines = chosen.map((item) => `${inner}${jsonText(item.node, inner)}`);
    return `[\n${lines.join(',\n')}\n${indent}]`;
  };
  const always = items.filter((item) => item.condition === undefined);
  if (condition === undefined) return print(items);
  return inlineChoice([{ condition, text: print(items) }], print(always));
}

// ---- YAML -------------------------------------------------------------------------------

const IF = (condition: string): string => `{{- if ${condition} }}`;
const END = '{{- end }}';

function guarded(condition: string | undefined, lines: readonly string[]): string[] {
  return condition === undefined ? [...lines] : [IF(condition), ...lines, END];
}

/** A choice whose options are blocks: each option printed whole under its own condition. */
function expandedChoice(
  node: Extract<Template, { kind: 'choice' }>,
  print: (node: Template) => string[],
): string[] {
  const lines: string[] = [];
  node.options.forEach((option, index) => {
    lines.push(
      `{{- ${index === 0 ? 'if' : 'else if'} ${option.condition} }}`,
      ...print(option.node),
    );
  });
  lines.push('{{- else }}', ...print(node.otherwise), END);
  return lines;
}

function entryLines(key: string, node: Template, pad: string): string[] {
  const head = `${pad}${keyText(key)}:`;
  const inline = inlineText(node);
  if (inline !== undefined) return [`${head} ${inline}`];
  switch (node.kind) {
    case 'map':
      return node.entries.length === 0
        ? [`${head} {}`]
        : [head, ...mapLines(node.entries, `${pad}  `)];
    case 'list':
      return node.items.length === 0
        ? [`${head} []`]
        : [head, ...listLines(node.items, `${pad}  `)];
    case 'json': {
      const inner = `${pad}  `;
      return [
        `${head} |`,
        ...jsonText(node.node, '')
          .split('\n')
          .map((line) => `${inner}${line}`),
      ];
    }
    case 'choice':
      return expandedChoice(node, (option) => entryLines(key, option, pad));
    case 'scalar':
      return [`${head} ${scalarText(node.value)}`];
  }
}

export function mapLines(entries: readonly TemplateEntry[], pad: string): string[] {
  return entries.flatMap((entry) =>
    guarded(entry.condition, entryLines(entry.key, entry.node, pad)),
  );
}

function itemLines(node: Template, pad: string): string[] {
  const inline = inlineText(node);
  if (inline !== undefined) return [`${pad}- ${inline}`];
  switch (node.kind) {
    case 'map': {
      if (node.entries.length === 0) return [`${pad}- {}`];
      const lines = mapLines(node.entries, `${pad}  `);
      const [first, ...rest] = lines;
      if (first === undefined || first.startsWith('{{')) return [`${pad}-`, ...lines];
      return [`${pad}- ${first.slice(pad.length + 2)}`, ...rest];
    }
    case 'list':
      return [`${pad}-`, ...listLines(node.items, `${pad}  `)];
    case 'json':
      return [
        `${pad}- |`,
        ...jsonText(node.node, '')
          .split('\n')
          .map((line) => `${pad}  ${line}`),
      ];
    case 'choice':
      return expandedChoice(node, (option) => itemLines(option, pad));
    case 'scalar':
      return [`${pad}- ${scalarText(node.value)}`];
  }
}

export function listLines(items: readonly TemplateItem[], pad: string): string[] {
  return items.flatMap((item) => guarded(item.condition, itemLines(item.node, pad)));
}

/** Kubernetes objects as template documents, each under its condition. */
export function documentsText(objects: readonly TemplateItem[]): string {
  const documents = objects.map((item) => {
    if (item.node.kind !== 'map') throw new Error('a manifest must be a map');
    return guarded(item.condition, ['---', ...mapLines(item.node.entries, '')]).join('\n');
  });
  return `${documents.join('\n')}\n`;
}
