import { renderHelp, renderUsage } from '../../render/help';
import type { Io } from '../../runtime/io';
import type { CommandSpec } from '../spec';
import { resolveChain, toCommandHelp } from '../tree';

/** `help [command]`: the help of any command, or the root usage for an unknown topic. */
export function helpCommand(root: () => CommandSpec, io: Io): CommandSpec {
  return {
    name: 'help',
    short: 'Help for nginx-meshctl or any command',
    long: 'Help provides help for any command in the application.\nSimply type nginx-meshctl help [path to command] for full details.',
    args: { usage: '[command]', max: Number.POSITIVE_INFINITY },
    noFlagsInUseLine: true,
    action: (context) => {
      const chain = resolveChain(root(), context.args);
      if (chain.length - 1 < context.args.length) {
        const topic = context.args.map((word) => `\`${word}\``).join(' ');
        io.err.write(`Unknown help topic [${topic}]\n`);
        io.err.write(renderUsage(toCommandHelp(chain.slice(0, 1))));
        return Promise.resolve(1);
      }
      io.out.write(renderHelp(toCommandHelp(chain)));
      return Promise.resolve();
    },
  };
}
