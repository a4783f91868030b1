import { parseArgs, type ParseArgsConfig } from 'node:util';

/** Wrong arguments: the message says what is wrong, `usage` how to call the command. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
  constructor(
    message: string,
    readonly usage: string,
  ) {
    super(message);
  }
}

type Options = NonNullable<ParseArgsConfig['options']>;

/** Parses a command's arguments strictly; unknown flags become a UsageError. */
export function parse<O extends Options>(args: readonly string[], options: O, usage: string, positionals = false) {
  try {
    return parseArgs({ args: [...args], options, strict: true, allowPositionals: positionals });
  } catch (err) {
    throw new UsageError((err as Error).message, usage);
  }
}
