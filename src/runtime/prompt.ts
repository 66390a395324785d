// Questions to the user on a terminal, as an injected dependency. Without a terminal on stdin
// nothing is asked: commands that need a confirmation refuse instead, unless told --yes.

export interface Prompter {
  /** stdin is a terminal: a question can be answered. */
  readonly interactive: boolean;
  /** Writes the question (to stderr) and resolves to the answered line. */
  ask(question: string): Promise<string>;
}

/** y or yes, in any case; anything else (including an empty answer) is no. */
export function isYes(answer: string): boolean {
  return /^\s*y(es)?\s*$/i.test(answer);
}
