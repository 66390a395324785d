// Termination signals as an injected dependency, so shutdown paths are testable in-process.

export type TerminationSignal = 'SIGTERM' | 'SIGINT' | 'SIGHUP';

export interface SignalSource {
  /** Calls handler for every termination signal until the returned function is called. */
  onSignal(handler: (signal: TerminationSignal) => void): () => void;
}

const terminationSignals: readonly TerminationSignal[] = ['SIGTERM', 'SIGINT', 'SIGHUP'];

export function processSignals(target: NodeJS.Process): SignalSource {
  return {
    onSignal(handler) {
      const listeners = terminationSignals.map((name) => {
        const listener = (): void => handler(name);
        target.on(name, listener);
        return [name, listener] as const;
      });
      return () => {
        for (const [name, listener] of listeners) target.off(name, listener);
      };
    },
  };
}
