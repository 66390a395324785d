// Colour for stderr. Loaded only when colour is on, so pipes and CI never pay for chalk.
import { Chalk } from 'chalk';
import type { Styles } from './io';

export function createColorStyles(): Styles {
  const chalk = new Chalk({ level: 1 });
  return { error: (text) => chalk.red(text), warning: (text) => chalk.yellow(text) };
}
