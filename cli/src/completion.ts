/** `hangar completion bash|zsh`: a completion script generated from the program's command tree. */
import type { Command } from 'commander';
import { UsageError } from './config.js';
import { example } from './options.js';

const flagsOf = (c: Command): string[] => [...c.options.flatMap((o) => [o.long, o.short].filter((f): f is string => !!f)), '--help'];
const takesId = (c: Command): boolean => c.registeredArguments[0]?.name() === 'id';
const words = (list: string[]): string => list.join(' ');

/** The bash case branch for one verb (and its subcommands, with the default one's options). */
function branch(c: Command): string {
  const subs = c.commands.filter((s) => s.name() !== 'help');
  if (subs.length) {
    const fallback = subs.find((s) => (c as unknown as { _defaultCommandName?: string })._defaultCommandName === s.name()) ?? subs[0]!;
    const inner = subs.map((s) => `          ${s.name()}) words="${words(flagsOf(s))}" ;;`).join('\n');
    return [
      `      ${c.name()})`,
      '        if [ "$COMP_CWORD" -eq 2 ]; then',
      `          words="${words([...subs.map((s) => s.name()), ...flagsOf(fallback)])}"`,
      '        else',
      '          case "${COMP_WORDS[2]}" in',
      inner,
      `          *) words="${words(flagsOf(fallback))}" ;;`,
      '          esac',
      '        fi ;;',
    ].join('\n');
  }
  const ids = takesId(c) ? '\n        if [[ "$cur" != -* && "$COMP_CWORD" -eq 2 ]]; then words="$(hangar ls -q 2>/dev/null)"; fi' : '';
  return `      ${c.name()})\n        words="${words(flagsOf(c))}"${ids} ;;`;
}

/** The completion script for bash (zsh loads it through bashcompinit). */
export function completionScript(shell: string, root: Command): string {
  if (shell !== 'bash' && shell !== 'zsh') throw new UsageError('completion takes bash or zsh, e.g. `source <(hangar completion bash)`');
  const verbs = root.commands.filter((c) => c.name() !== 'help');
  const script = [
    '# hangar shell completion, generated from its command tree by `hangar completion`.',
    '_hangar() {',
    '  local cur="${COMP_WORDS[COMP_CWORD]}" words=""',
    '  if [ "$COMP_CWORD" -le 1 ]; then',
    `    words="${words([...verbs.map((c) => c.name()), '--help', '--version'])}"`,
    '  else',
    '    case "${COMP_WORDS[1]}" in',
    ...verbs.map(branch),
    '    esac',
    '  fi',
    '  COMPREPLY=($(compgen -W "$words" -- "$cur"))',
    '}',
    'complete -o default -F _hangar hangar',
  ].join('\n');
  return shell === 'zsh' ? `autoload -U +X bashcompinit && bashcompinit\n${script}\n` : `${script}\n`;
}

/** Add the completion verb to the program. */
export function addCompletionCommand(p: Command): void {
  p.command('completion <shell>')
    .description('Print a shell completion script (bash or zsh) for hangar.')
    .addHelpText('after', example('source <(hangar completion bash)      # or add it to ~/.bashrc', 'hangar completion zsh > "${fpath[1]}/_hangar"'))
    .action((shell: string) => {
      process.stdout.write(completionScript(shell, p));
    });
}
