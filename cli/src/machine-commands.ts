/** Verbs about machines themselves: login, create, ls, get, pause, resume, rm, snapshot, fork, open. */
import type { Command } from 'commander';
import { HangarClient, type CreateMachineRequest, type Machine } from '../../sdk/src/index.js';
import { client, config, configPath, saveConfig, UsageError } from './config.js';
import { jsonOption, example } from './options.js';
import { machineTable, out, spin, table } from './output.js';

const parseJsonObject = (flag: string, text: string): Record<string, unknown> => {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    v = null;
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new UsageError(`${flag} must be a JSON object, e.g. ${flag} '{"owner":"me"}'`);
  return v as Record<string, unknown>;
};

interface CreateOptions {
  template: string;
  vcpus?: number;
  memory?: number;
  disk?: number;
  timeout?: number;
  timeoutAction?: 'destroy' | 'hibernate';
  idleTimeout?: number;
  metadata?: string;
  env?: string[];
  public?: boolean;
  script?: string;
  network?: string;
  isolation?: string;
  wait: boolean;
  json?: boolean;
}

/** The request a `create` asks for. */
function createRequest(o: CreateOptions): CreateMachineRequest {
  const config: NonNullable<CreateMachineRequest['config']> = {};
  if (o.vcpus !== undefined) config.vcpus = o.vcpus;
  if (o.memory !== undefined) config.memory_mb = o.memory;
  if (o.disk !== undefined) config.disk_mb = o.disk;
  const env: Record<string, string> = {};
  for (const kv of o.env ?? []) {
    const eq = kv.indexOf('=');
    if (eq < 1) throw new UsageError(`--env takes NAME=value, not "${kv}"`);
    env[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  return {
    template: o.template,
    ...(Object.keys(config).length ? { config } : {}),
    ...(o.timeout !== undefined ? { timeout_ms: o.timeout } : {}),
    ...(o.timeoutAction ? { timeout_action: o.timeoutAction } : {}),
    ...(o.idleTimeout !== undefined ? { inactivity_timeout_ms: o.idleTimeout } : {}),
    ...(o.metadata !== undefined ? { metadata: parseJsonObject('--metadata', o.metadata) } : {}),
    ...(Object.keys(env).length ? { env } : {}),
    ...(o.public ? { public: true } : {}),
    ...(o.script !== undefined ? { startup_script_id: o.script } : {}),
    ...(o.network !== undefined ? { network_id: o.network } : {}),
    ...(o.isolation !== undefined ? { isolation: o.isolation as NonNullable<CreateMachineRequest['isolation']> } : {}),
  };
}

/** Poll until the machine has left `creating` (a create answers once running; a retried one may still be on its way). */
async function untilStarted(c: HangarClient, m: Machine): Promise<Machine> {
  while (m.status === 'creating') {
    await new Promise((r) => setTimeout(r, 250));
    m = await c.getMachine(m.id);
  }
  return m;
}

const int = (flag: string) => (v: string): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new UsageError(`${flag} takes a whole number, not "${v}"`);
  return n;
};

/** What `ls` shows, in a stable order. */
async function listed(c: HangarClient, o: { state?: string; template?: string }): Promise<Machine[]> {
  const all: Machine[] = [];
  for await (const m of c.listMachines({ ...(o.state ? { state: o.state.split(',') } : {}), ...(o.template ? { template: o.template } : {}) })) all.push(m);
  return all;
}

/** Add the machine verbs to the program. */
export function addMachineCommands(p: Command): void {
  p.command('login')
    .description('Check a server URL and API key, then store them (mode 0600 in $XDG_CONFIG_HOME/hangar/config.json).')
    .requiredOption('--url <url>', 'server URL, e.g. http://127.0.0.1:8080')
    .requiredOption('--key <key>', 'API key')
    .addOption(jsonOption())
    .addHelpText('after', example('hangar login --url http://127.0.0.1:8080 --key "$(cat .data/admin-key)"'))
    .action(async (o: { url: string; key: string; json?: boolean }) => {
      await new HangarClient({ baseUrl: o.url, apiKey: o.key }).raw('GET', '/v1/machines?limit=1');
      await saveConfig({ url: o.url, apiKey: o.key });
      out(!!o.json, { url: o.url, config: configPath() }, () => `logged in to ${o.url}; saved in ${configPath()}`);
    });

  p.command('create')
    .description('Create a machine; prints it once it runs.')
    .option('-t, --template <name>', 'template', 'base')
    .option('--vcpus <n>', 'vCPUs', int('--vcpus'))
    .option('--memory <mb>', 'memory in MiB', int('--memory'))
    .option('--disk <mb>', 'disk in MiB', int('--disk'))
    .option('--timeout <ms>', 'hard deadline from start, in ms', int('--timeout'))
    .option('--timeout-action <action>', 'at the deadline: destroy or hibernate')
    .option('--idle-timeout <ms>', 'pause or destroy after this long without activity, in ms', int('--idle-timeout'))
    .option('--metadata <json>', 'metadata as a JSON object')
    .option('-e, --env <NAME=value...>', 'environment variables')
    .option('--public', 'ingress without a traffic token')
    .option('--script <id>', 'a startup script to run after it starts (hangar scripts)')
    .option('--network <id>', 'a private network to join (hangar networks)')
    .option('--isolation <tier>', 'container (runc, the default) or gvisor (gVisor\'s kernel: no pause, snapshots or resize)')
    .option('--wait', 'wait until the machine runs (the default)', true)
    .option('--no-wait', 'print the machine as soon as the server has it, even if still creating')
    .addOption(jsonOption())
    .addHelpText('after', example('hangar create --template python --memory 1024 --timeout 600000 --metadata \'{"owner":"me"}\''))
    .action(async (o: CreateOptions) => {
      if (o.timeoutAction && o.timeoutAction !== 'destroy' && o.timeoutAction !== 'hibernate') throw new UsageError('--timeout-action is destroy or hibernate');
      if (o.isolation && o.isolation !== 'container' && o.isolation !== 'gvisor') throw new UsageError('--isolation is container or gvisor');
      const req = createRequest(o);
      const c = await client();
      const m = await spin(`creating a ${o.template} machine`, !!o.json, async () => {
        const created = await c.createMachine(req);
        return o.wait ? untilStarted(c, created) : created;
      });
      out(!!o.json, m, () => machineTable([m]));
    });

  p.command('ls')
    .description('List machines; --watch redraws the list as it changes.')
    .option('-s, --state <states>', 'comma-separated states, e.g. running,paused')
    .option('-t, --template <name>', 'only this template')
    .option('-q, --quiet', 'ids only')
    .option('-w, --watch', 'keep polling and redraw on change (Ctrl-C to stop)')
    .option('--interval <ms>', 'poll period with --watch', int('--interval'), 1000)
    .addOption(jsonOption())
    .addHelpText('after', example('hangar ls --state running,paused --watch'))
    .action(async (o: { state?: string; template?: string; quiet?: boolean; watch?: boolean; interval: number; json?: boolean }) => {
      const c = await client();
      const render = (all: Machine[]): string => (o.json ? JSON.stringify(all, null, o.watch ? undefined : 2) : o.quiet ? all.map((m) => m.id).join('\n') : machineTable(all));
      if (!o.watch) {
        const text = render(await listed(c, o));
        if (text) process.stdout.write(`${text}\n`);
        return;
      }
      // A terminal gets the table redrawn in place every poll (its times move); a pipe gets one copy per change.
      const tty = process.stdout.isTTY && !o.json;
      let last = '';
      for (;;) {
        const all = await listed(c, o);
        const key = JSON.stringify(all.map((m) => [m.id, m.status, m.config, m.timeout_at]));
        if (tty) process.stdout.write(`\x1b[H\x1b[2J${render(all)}\n`);
        else if (key !== last) process.stdout.write(`${render(all)}\n${o.json ? '' : '\n'}`);
        last = key;
        await new Promise((r) => setTimeout(r, o.interval));
      }
    });

  p.command('get <id>')
    .description('Show one machine.')
    .addOption(jsonOption())
    .addHelpText('after', example('hangar get mch_abc --json'))
    .action(async (id: string, o: { json?: boolean }) => {
      const m = await (await client()).getMachine(id);
      out(!!o.json, m, () => machineTable([m]));
    });

  const lifecycle = [
    ['pause', 'Pause a machine to a memory snapshot (its processes stop where they are).', 'pausing'],
    ['resume', 'Resume a paused machine: the same processes go on.', 'resuming'],
    ['rm', 'Destroy a machine.', 'destroying'],
  ] as const;
  for (const [verb, what, doing] of lifecycle) {
    p.command(`${verb} <id>`)
      .description(what)
      .addOption(jsonOption())
      .addHelpText('after', example(`hangar ${verb} mch_abc`))
      .action(async (id: string, o: { json?: boolean }) => {
        const c = await client();
        const m = await spin(`${doing} ${id}`, !!o.json, () => (verb === 'pause' ? c.pause(id) : verb === 'resume' ? c.resume(id) : c.deleteMachine(id)));
        out(!!o.json, m, () => machineTable([m]));
      });
  }

  p.command('snapshot <id>')
    .description('Snapshot a running machine (memory and disk; it keeps running).')
    .addOption(jsonOption())
    .addHelpText('after', example('hangar snapshot mch_abc'))
    .action(async (id: string, o: { json?: boolean }) => {
      const s = await spin(`snapshotting ${id}`, !!o.json, async () => (await client()).snapshot(id));
      out(!!o.json, s, () => table(['SNAPSHOT', 'MACHINE', 'KIND', 'MEMORY', 'BYTES'], [[s.id, s.machine_id, s.kind, String(s.memory), String(s.size_bytes)]]));
    });

  p.command('fork <snapshot>')
    .description('Start a new machine from a snapshot, its processes restored.')
    .option('--metadata <json>', 'metadata of the new machine as a JSON object')
    .addOption(jsonOption())
    .addHelpText('after', example('hangar fork snap_abc'))
    .action(async (snapshot: string, o: { metadata?: string; json?: boolean }) => {
      const metadata = o.metadata === undefined ? undefined : parseJsonObject('--metadata', o.metadata);
      const m = await spin(`forking ${snapshot}`, !!o.json, async () => (await client()).fork(snapshot, metadata ? { metadata } : {}));
      out(!!o.json, m, () => machineTable([m]));
    });

  p.command('open <id>')
    .description("Print the URL of a machine's page in the web console.")
    .addOption(jsonOption())
    .addHelpText('after', example('xdg-open "$(hangar open mch_abc)"'))
    .action(async (id: string, o: { json?: boolean }) => {
      const url = `${(await config()).url.replace(/\/+$/, '')}/console/machines/${encodeURIComponent(id)}`;
      out(!!o.json, { url }, () => url);
    });
}
