/** Options and help text every verb shares. */
import { Option } from 'commander';

/** `--json`: machine-readable output on stdout. */
export const jsonOption = (): Option => new Option('--json', 'print JSON for scripts');

/** The "Example:" block of a verb's --help. */
export const example = (...lines: string[]): string => `\nExample${lines.length > 1 ? 's' : ''}:\n${lines.map((l) => `  ${l}`).join('\n')}`;
