/** All command implementations by lower-case name. */
import { hashCommands } from './cmd-hashes.js';
import { keyCommands } from './cmd-keys.js';
import { listCommands } from './cmd-lists.js';
import { setCommands } from './cmd-sets.js';
import { stringCommands } from './cmd-strings.js';
import { zsetCommands } from './cmd-zsets.js';
import { arg, type CommandImpl, type ImplTable } from './impl.js';
import { integer } from './reply.js';

const pubsubCommands: ImplTable = {
  /** The reply is 0: the runtime may replace it with its local receiver count. */
  publish: {
    run: (ctx, argv) => {
      ctx.publish({ channel: arg(argv, 1), message: arg(argv, 2) });
      return integer(0);
    },
  },
};

const registry: ReadonlyMap<string, CommandImpl> = new Map(
  Object.entries({
    ...keyCommands,
    ...stringCommands,
    ...hashCommands,
    ...setCommands,
    ...listCommands,
    ...zsetCommands,
    ...pubsubCommands,
  }),
);

export function implementationOf(name: string): CommandImpl | undefined {
  return registry.get(name);
}
