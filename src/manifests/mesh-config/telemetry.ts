// --telemetry-exporters and --telemetry-sampler-ratio, with NGINX Service Mesh's messages. Pure.
import { quoteGo } from '../../render/help';
import { OTLP_PROTOCOLS } from './types';
import type { OtlpExporter, OtlpProtocol } from './types';

/**
 * Splits one line of comma-separated values as Go's encoding/csv reads a record: a field that
 * starts with a double quote is quoted ("" inside it is a quote); a quote anywhere else is an
 * error. Returns undefined when the text is not one valid record.
 */
export function splitCsvRecord(text: string): readonly string[] | undefined {
  const line = text.replace(/\r?\n$/, '');
  if (line === '' || line.includes('\n')) return undefined;
  const fields: string[] = [];
  let index = 0;
  for (;;) {
    const parsed = line[index] === '"' ? quotedField(line, index) : plainField(line, index);
    if (parsed === undefined) return undefined;
    fields.push(parsed.value);
    if (parsed.end >= line.length) return fields;
    index = parsed.end + 1;
  }
}

function plainField(line: string, start: number): { value: string; end: number } | undefined {
  const comma = line.indexOf(',', start);
  const end = comma === -1 ? line.length : comma;
  const value = line.slice(start, end);
  return value.includes('"') ? undefined : { value, end };
}

function quotedField(line: string, start: number): { value: string; end: number } | undefined {
  let value = '';
  let index = start + 1;
  while (index < line.length) {
    const char = line[index];
    if (char !== '"') {
      value += char;
      index += 1;
    } else if (line[index + 1] === '"') {
      value += '"';
      index += 2;
    } else {
      const after = index + 1;
      return after === line.length || line[after] === ',' ? { value, end: after } : undefined;
    }
  }
  return undefined;
}

/** One exporter's settings, or the problem, in NGINX Service Mesh's words. */
export function parseTelemetryExporter(text: string): OtlpExporter | { problem: string } {
  const fields = splitCsvRecord(text);
  if (fields === undefined) {
    return {
      problem: `failed to parse telemetry-exporters input: ${quoteGo(text)}; expected key value pairs separated by commas`,
    };
  }
  const settings = new Map<string, string>();
  for (const pair of fields) {
    const equals = pair.indexOf('=');
    const problem =
      equals === -1
        ? `${pair} must be formatted as key=value`
        : settings.has(pair.slice(0, equals))
          ? `duplicate key: ${pair.slice(0, equals)}`
          : undefined;
    if (problem !== undefined) {
      return { problem: `failed to parse telemetry-exporters input ${quoteGo(text)}: ${problem}` };
    }
    settings.set(pair.slice(0, equals), pair.slice(equals + 1));
  }
  const invalid = exporterProblem(settings);
  if (invalid !== undefined) {
    return {
      problem: `invalid telemetry-exporters input ${quoteGo(text)}: invalid exporter config: ${invalid}`,
    };
  }
  const protocol = settings.get('protocol') as OtlpProtocol | undefined;
  return {
    host: settings.get('host') ?? '',
    port: Number(settings.get('port')),
    ...(protocol === undefined || protocol === 'grpc' ? {} : { protocol }),
  };
}

function exporterProblem(settings: ReadonlyMap<string, string>): string | undefined {
  const type = settings.get('type');
  if (type === undefined) return 'missing type';
  if (type !== 'otlp') return 'unsupported type: must be "otlp"';
  if (!settings.get('host')) return 'missing host';
  const port = settings.get('port');
  if (port === undefined) return 'missing port';
  const number = /^\d{1,5}$/.test(port) ? Number(port) : Number.NaN;
  if (!(number >= 1 && number <= 65_535)) {
    return `invalid port ${quoteGo(port)}: expected 1-65535`;
  }
  const protocol = settings.get('protocol');
  if (protocol !== undefined && !(OTLP_PROTOCOLS as readonly string[]).includes(protocol)) {
    return `unsupported protocol ${quoteGo(protocol)}: must be "grpc" or "http"`;
  }
  const unknown = [...settings.keys()].find(
    (key) => !['type', 'host', 'port', 'protocol'].includes(key),
  );
  if (unknown !== undefined) return `unknown key ${quoteGo(unknown)}`;
  return undefined;
}

/** A sampling ratio from the flag's text, or undefined unless it is a number from 0 to 1. */
export function parseSamplerRatio(value: string | number): number | undefined {
  const text = String(value).trim();
  if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(text)) return undefined;
  const ratio = Number(text);
  return ratio >= 0 && ratio <= 1 ? ratio : undefined;
}
