// Types of targets.mjs, which the .mjs benchmarks import as it is and the .ts ones through these.
export type Comparison = '<' | '<=' | '>' | '>=' | '=';
export interface Target {
  readonly how: Comparison;
  readonly limit: number;
}
export declare function isMet(value: number, target: Target): boolean;
export declare function verdictOf(value: number, target: Target): 'met' | 'missed';
export declare function targetLine(
  figure: string,
  value: number,
  target: Target,
  digits?: number,
): string;
