#!/usr/bin/env node
/**
 * `hangar`: the command line over the SDK. One verb per action, human tables by default
 * and `--json` for scripts. Exit codes: 0 ok, 1 the server refused or failed (the message
 * says what to fix), 2 bad usage, 3 the server could not be reached; `exec` passes the
 * command's own exit code through.
 */
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { Command, CommanderError, Option } from 'commander';
import { HangarApiError, HangarClient, HangarConnectionError, HangarTimeoutError, type Machine, type Template } from '../../sdk/src/index.js';

const configPath = (): string => join(process.env.XDG_CONFIG_HOME || join(homedir(), '.config'), 'hangar', 'config.json');

interface Config {
  url: string;
  apiKey: string;
}

async function config(): Promise<Config> {
  const saved = await readFile(configPath(), 'utf8').then((t) => JSON.parse(t) as Partial<Config>, () => ({}) as Partial<Config>);
  const url = process.env.HANGAR_URL ?? saved.url ?? 'http://127.0.0.1:8080';
  const apiKey = process.env.HANGAR_API_KEY ?? saved.apiKey;
  if (!apiKey) throw new UsageError('no API key: run `hangar login --url URL --key KEY`, or set HANGAR_API_KEY');
  return { url, apiKey };
}

class UsageError extends Error {}

const client = async (): Promise<HangarClient> => {
  const c = await config();
  return new HangarClient({ baseUrl: c.url, apiKey: c.apiKey });
};

/** "3 min ago", "in 2 h". */
export function relative(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return '-';
  const s = Math.round((new Date(iso).getTime() - now) / 1000);
  const a = Math.abs(s);
  const text = a < 60 ? `${a} s` : a < 3600 ? `${Math.round(a / 60)} min` : a < 86_400 ? `${Math.round(a / 3600)} h` : `${Math.round(a / 86_400)} d`;
  return s <= 0 ? `${text} ago` : `in ${text}`;
}

/** Aligned columns. */
export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ');
  return [line(headers), ...rows.map(line)].join('\n');
}

const machineRow = (m: Machine): string[] => [m.id, m.status, m.template, `${m.config.vcpus} vCPU ${m.config.memory_mb} MiB`, relative(m.created_at), relative(m.timeout_at ?? null)];
const MACHINE_HEADERS = ['ID', 'STATUS', 'TEMPLATE', 'SIZE', 'CREATED', 'TIMEOUT'];

/** A spinner on stderr while `work` runs, when stderr is a terminal (never in --json). */
async function spin<T>(label: string, json: boolean, work: () => Promise<T>): Promise<T> {
  if (json || !process.stderr.isTTY) return work();
  const frames = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
  let i = 0;
  const started = Date.now();
  const timer = setInterval(() => process.stderr.write(`\r${frames[i++ % frames.length]} ${label} ${((Date.now() - started) / 1000).toFixed(1)} s`), 80);
  try {
    return await work();
  } finally {
    clearInterval(timer);
    process.stderr.write('\r\x1b[K');
  }
}

const out = (json: boolean, value: unknown, human: () => string): void => {
  process.stdout.write(`${json ? JSON.stringify(value, null, 2) : human()}\n`);
};

/** `machine:/path` or a local path. */
const remote = (spec: string): { id: string; path: string } | null => {
  const m = /^(mch_[a-z0-9]+):(\/.*)$/.exec(spec);
  return m ? { id: m[1]!, path: m[2]! } : null;
};

export function program(): Command {
  const p = new Command('hangar')
    .description('Hangar machines from the command line.')
    .configureOutput({ writeErr: (s) => process.stderr.write(s) })
    .exitOverride()
    .showSuggestionAfterError();
  const json = new Option('--json', 'print JSON for scripts');

  p.command('login')
    .description('Store the server URL and API key (mode 0600 in $XDG_CONFIG_HOME/hangar/config.json).')
    .requiredOption('--url <url>', 'server URL, e.g. http://127.0.0.1:8080')
    .requiredOption('--key <key>', 'API key')
    .addHelpText('after', '\nExample:\n  hangar login --url http://127.0.0.1:8080 --key "$(cat /var/lib/hangar/admin-key)"')
    .action(async (o: { url: string; key: string }) => {
      const c = new HangarClient({ baseUrl: o.url, apiKey: o.key });
      await c.raw('GET', '/v1/machines?limit=1');
      await mkdir(dirname(configPath()), { recursive: true, mode: 0o700 });
      await writeFile(configPath(), JSON.stringify({ url: o.url, apiKey: o.key }), { mode: 0o600 });
      await chmod(configPath(), 0o600);
      process.stdout.write(`logged in to ${o.url}; saved in ${configPath()}\n`);
    });

  p.command('create')
    .description('Create a machine and wait until it runs.')
    .option('-t, --template <name>', 'template', 'base')
    .option('--vcpus <n>', 'vCPUs', Number)
    .option('--memory <mb>', 'memory in MiB', Number)
    .option('--disk <mb>', 'disk in MiB', Number)
    .option('--timeout <ms>', 'hard deadline from start, in ms', Number)
    .option('--metadata <json>', 'metadata as a JSON object')
    .addOption(json)
    .addHelpText('after', '\nExample:\n  hangar create --template python --memory 1024')
    .action(async (o: { template: string; vcpus?: number; memory?: number; disk?: number; timeout?: number; metadata?: string; json?: boolean }) => {
      const config: Record<string, number> = {};
      if (o.vcpus !== undefined) config.vcpus = o.vcpus;
      if (o.memory !== undefined) config.memory_mb = o.memory;
      if (o.disk !== undefined) config.disk_mb = o.disk;
      let metadata: Record<string, unknown> | undefined;
      if (o.metadata !== undefined) {
        try {
          metadata = JSON.parse(o.metadata) as Record<string, unknown>;
        } catch {
          throw new UsageError('--metadata must be a JSON object, e.g. --metadata \'{"owner":"me"}\'');
        }
      }
      const c = await client();
      const m = await spin('creating', !!o.json, () =>
        c.createMachine({ template: o.template, ...(Object.keys(config).length ? { config } : {}), ...(o.timeout ? { timeout_ms: o.timeout } : {}), ...(metadata ? { metadata } : {}) }),
      );
      out(!!o.json, m, () => table(MACHINE_HEADERS, [machineRow(m)]));
    });

  p.command('ls')
    .description('List machines.')
    .option('-s, --state <states>', 'comma-separated states, e.g. running,paused')
    .option('-t, --template <name>', 'only this template')
    .addOption(json)
    .addHelpText('after', '\nExample:\n  hangar ls --state running')
    .action(async (o: { state?: string; template?: string; json?: boolean }) => {
      const c = await client();
      const all: Machine[] = [];
      for await (const m of c.listMachines({ ...(o.state ? { state: o.state.split(',') } : {}), ...(o.template ? { template: o.template } : {}) })) all.push(m);
      out(!!o.json, all, () => table(MACHINE_HEADERS, all.map(machineRow)));
    });

  p.command('get <id>')
    .description('Show one machine.')
    .addOption(json)
    .action(async (id: string, o: { json?: boolean }) => {
      const m = await (await client()).getMachine(id);
      out(!!o.json, m, () => table(MACHINE_HEADERS, [machineRow(m)]));
    });

  p.command('exec <id> <cmd...>')
    .description('Run a command in a machine, its output streamed; exits with its exit code.')
    .addHelpText('after', '\nExample:\n  hangar exec mch_abc -- python3 -c "print(42)"')
    .action(async (id: string, cmd: string[]) => {
      const c = await client();
      let code = 1;
      for await (const e of c.execStream(id, { cmd })) {
        if (e.type === 'exit') code = e.exitCode;
        else if (e.type === 'stdout') process.stdout.write(e.data);
        else process.stderr.write(e.data);
      }
      process.exitCode = code;
    });

  p.command('cp <from> <to>')
    .description('Copy a file to or from a machine (machine paths are mch_id:/path).')
    .addHelpText('after', '\nExamples:\n  hangar cp ./app.py mch_abc:/root/app.py\n  hangar cp mch_abc:/root/out.txt ./out.txt')
    .action(async (from: string, to: string) => {
      const c = await client();
      const src = remote(from);
      const dst = remote(to);
      if (src && !dst) {
        const bytes = await c.readFile(src.id, src.path);
        await writeFile(to.endsWith('/') ? join(to, basename(src.path)) : to, bytes);
        process.stderr.write(`copied ${bytes.length} bytes from ${from}\n`);
      } else if (dst && !src) {
        const bytes = await readFile(from);
        await c.writeFile(dst.id, dst.path.endsWith('/') ? `${dst.path}${basename(from)}` : dst.path, bytes);
        process.stderr.write(`copied ${bytes.length} bytes to ${to}\n`);
      } else throw new UsageError('exactly one side must be a machine path (mch_id:/path)');
    });

  for (const [verb, what] of [['pause', 'Pause a machine to a memory snapshot.'], ['resume', 'Resume a paused machine.'], ['rm', 'Destroy a machine.']] as const) {
    p.command(`${verb} <id>`)
      .description(what)
      .addOption(json)
      .action(async (id: string, o: { json?: boolean }) => {
        const c = await client();
        const m = await spin(verb, !!o.json, () => (verb === 'pause' ? c.pause(id) : verb === 'resume' ? c.resume(id) : c.deleteMachine(id)));
        out(!!o.json, m, () => table(MACHINE_HEADERS, [machineRow(m)]));
      });
  }

  p.command('snapshot <id>')
    .description('Snapshot a running machine (it keeps running).')
    .addOption(json)
    .action(async (id: string, o: { json?: boolean }) => {
      const s = await spin('snapshotting', !!o.json, async () => (await client()).snapshot(id));
      out(!!o.json, s, () => table(['SNAPSHOT', 'MACHINE', 'KIND', 'MEMORY', 'BYTES'], [[s.id, s.machine_id, s.kind, String(s.memory), String(s.size_bytes)]]));
    });

  p.command('fork <snapshot>')
    .description('Start a new machine from a snapshot.')
    .addOption(json)
    .action(async (snapshot: string, o: { json?: boolean }) => {
      const m = await spin('forking', !!o.json, async () => (await client()).fork(snapshot));
      out(!!o.json, m, () => table(MACHINE_HEADERS, [machineRow(m)]));
    });

  p.command('templates')
    .description('List the templates you can create machines from.')
    .addOption(json)
    .action(async (o: { json?: boolean }) => {
      const c = await client();
      const all: Template[] = [];
      for await (const t of c.listTemplates()) all.push(t);
      out(!!o.json, all, () => table(['NAME', 'SCOPE', 'STATUS', 'VERSION', 'DESCRIPTION'], all.map((t) => [t.name, t.scope, t.status, String(t.version ?? '-'), t.description])));
    });

  p.command('volumes')
    .description('List your volumes.')
    .addOption(json)
    .action(async (o: { json?: boolean }) => {
      const v = await (await client()).listVolumes();
      out(!!o.json, v.items, () => table(['ID', 'NAME', 'SIZE'], v.items.map((x) => [x.id, x.name, `${x.size_mb} MiB`])));
    });

  p.command('open <id>')
    .description("Print the console page of a machine.")
    .action(async (id: string) => {
      process.stdout.write(`${(await config()).url.replace(/\/+$/, '')}/console/machines/${id}\n`);
    });
  return p;
}

/** Run the CLI; resolves with the exit code. */
export async function main(argv: string[]): Promise<number> {
  try {
    await program().parseAsync(argv, { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    if (err instanceof UsageError) {
      process.stderr.write(`hangar: ${err.message}\n`);
      return 2;
    }
    if (err instanceof HangarApiError) {
      process.stderr.write(`hangar: ${err.message} (${err.code})\n`);
      return 1;
    }
    if (err instanceof HangarConnectionError || err instanceof HangarTimeoutError) {
      process.stderr.write(`hangar: ${err.message}; is the server running? (hangar login --url …)\n`);
      return 3;
    }
    process.stderr.write(`hangar: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
}

if (process.argv[1] && /hangar(\.js)?$/.test(process.argv[1])) {
  process.exitCode = await main(process.argv.slice(2));
}
