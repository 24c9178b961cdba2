/** Verbs over the server's catalogues: templates (list, build with its log, rm), volumes, startup scripts, private networks, warm pools. */
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import type { BuildTemplateRequest, Template, TemplateBuild } from '../../sdk/src/index.js';
import { client, UsageError } from './config.js';
import { example, jsonOption } from './options.js';
import { out, relative, spin, table } from './output.js';

const count = (flag: string) => (v: string): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new UsageError(`${flag} takes a whole number, not "${v}"`);
  return n;
};
const collect = (v: string, prev: string[] = []): string[] => [...prev, v];

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** Add templates, volumes and pools (each with `ls` as its default) to the program. */
export function addCatalogCommands(p: Command): void {
  const templates = p.command('templates').description('Templates machines are made from: list, build, remove.').addHelpText('after', example('hangar templates', 'hangar templates build web --from python --run "pip install flask"'));
  templates
    .command('ls', { isDefault: true })
    .description('List the templates you can create machines from.')
    .addOption(jsonOption())
    .addHelpText('after', example('hangar templates ls'))
    .action(async (o: { json?: boolean }) => {
      const c = await client();
      const all: Template[] = [];
      for await (const t of c.listTemplates()) all.push(t);
      out(!!o.json, all, () => table(['NAME', 'SCOPE', 'STATUS', 'VERSION', 'DESCRIPTION'], all.map((t) => [t.name, t.scope, t.status, String(t.version ?? '-'), t.description])));
    });
  templates
    .command('build <name>')
    .description('Build a template from another one and shell steps; prints its log as it builds.')
    .requiredOption('--from <template>', 'the template to start from, e.g. base or python')
    .option('--run <command>', 'a shell step (repeat for more)', collect)
    .option('--description <text>', 'what it is for')
    .addOption(jsonOption())
    .addHelpText('after', example('hangar templates build tools --from base --run "echo hi > /etc/motd" --run "mkdir /work"'))
    .action(async (name: string, o: { from: string; run?: string[]; description?: string; json?: boolean }) => {
      const c = await client();
      const req: BuildTemplateRequest = { name, source: { template: o.from }, steps: (o.run ?? []).map((run) => ({ run })), ...(o.description ? { description: o.description } : {}) };
      const b = await spin(`building ${name}`, !!o.json, async (progress): Promise<TemplateBuild> => {
        const started = await c.buildTemplate(req);
        for await (const e of c.templateBuildLogs(name, started.id)) if (e.type === 'log' && !o.json) progress.log(e.line);
        return c.raw('GET', `/v1/templates/${encodeURIComponent(name)}/builds/${encodeURIComponent(started.id)}`).then((r) => r.json() as Promise<TemplateBuild>);
      });
      out(!!o.json, b, () => table(['TEMPLATE', 'BUILD', 'STATUS', 'VERSION'], [[b.template, b.id, b.status, String(b.version)]]));
      if (b.status !== 'ready') {
        process.stderr.write(`hangar: the build of ${name} failed${b.error ? ` in ${b.error.step}: ${b.error.message}` : ''}\n`);
        process.exitCode = 1;
      }
    });
  templates
    .command('rm <name>')
    .description('Delete a template (machines made from it keep running).')
    .addOption(jsonOption())
    .addHelpText('after', example('hangar templates rm tools'))
    .action(async (name: string, o: { json?: boolean }) => {
      await (await client()).deleteTemplate(name);
      out(!!o.json, { deleted: name }, () => `deleted template ${name}`);
    });

  const volumes = p.command('volumes').description('Volumes, disks that outlive machines: list, create, remove.').addHelpText('after', example('hangar volumes', 'hangar volumes create data --size 1024'));
  volumes
    .command('ls', { isDefault: true })
    .description('List your volumes.')
    .addOption(jsonOption())
    .addHelpText('after', example('hangar volumes ls --json'))
    .action(async (o: { json?: boolean }) => {
      const v = await (await client()).listVolumes();
      out(!!o.json, v.items, () => table(['ID', 'NAME', 'SIZE', 'CREATED'], v.items.map((x) => [x.id, x.name, `${x.size_mb} MiB`, relative(x.created_at)])));
    });
  volumes
    .command('create <name>')
    .description('Create a volume.')
    .requiredOption('--size <mb>', 'size in MiB (16 or more)', count('--size'))
    .addOption(jsonOption())
    .addHelpText('after', example('hangar volumes create data --size 1024'))
    .action(async (name: string, o: { size: number; json?: boolean }) => {
      const v = await (await client()).createVolume({ name, size_mb: o.size });
      out(!!o.json, v, () => table(['ID', 'NAME', 'SIZE'], [[v.id, v.name, `${v.size_mb} MiB`]]));
    });
  volumes
    .command('rm <id>')
    .description('Delete a volume and its data.')
    .addOption(jsonOption())
    .addHelpText('after', example('hangar volumes rm vol_abc'))
    .action(async (id: string, o: { json?: boolean }) => {
      await (await client()).deleteVolume(id);
      out(!!o.json, { deleted: id }, () => `deleted volume ${id}`);
    });

  const scripts = p.command('scripts').description('Startup scripts machines run after they start: list, create, show, remove.').addHelpText('after', example('hangar scripts', 'hangar scripts create setup --file setup.sh --once', 'hangar create --script scr_abc'));
  scripts
    .command('ls', { isDefault: true })
    .description('List your startup scripts.')
    .addOption(jsonOption())
    .addHelpText('after', example('hangar scripts ls --json'))
    .action(async (o: { json?: boolean }) => {
      const { items } = await (await client()).listStartupScripts();
      out(!!o.json, items, () => table(['ID', 'NAME', 'RUNS', 'BYTES', 'CREATED'], items.map((x) => [x.id, x.name, x.run_once ? 'first start' : 'every start', String(Buffer.byteLength(x.script)), relative(x.created_at)])));
    });
  scripts
    .command('create <name>')
    .description('Keep a startup script (machines created with it keep their own copy).')
    .option('--file <path>', 'read the script from this file ("-" for standard input)')
    .option('--run <script>', 'the script itself, as one argument')
    .option('--once', 'run only after a machine\'s first start (default: after every start)')
    .addOption(jsonOption())
    .addHelpText('after', example('hangar scripts create setup --file setup.sh --once', 'hangar scripts create hello --run "echo hi > /root/hi"'))
    .action(async (name: string, o: { file?: string; run?: string; once?: boolean; json?: boolean }) => {
      if ((o.file === undefined) === (o.run === undefined)) throw new UsageError('give the script with exactly one of --file or --run');
      const script = o.run ?? (o.file === '-' ? await readStdin() : await readFile(o.file!, 'utf8'));
      const s = await (await client()).createStartupScript({ name, script, run_once: !!o.once });
      out(!!o.json, s, () => table(['ID', 'NAME', 'RUNS'], [[s.id, s.name, s.run_once ? 'first start' : 'every start']]));
    });
  scripts
    .command('show <id>')
    .description('Print a startup script.')
    .addOption(jsonOption())
    .addHelpText('after', example('hangar scripts show scr_abc'))
    .action(async (id: string, o: { json?: boolean }) => {
      const s = await (await client()).getStartupScript(id);
      out(!!o.json, s, () => s.script.replace(/\n?$/, ''));
    });
  scripts
    .command('rm <id>')
    .description('Delete a startup script (machines keep their copies).')
    .addOption(jsonOption())
    .addHelpText('after', example('hangar scripts rm scr_abc'))
    .action(async (id: string, o: { json?: boolean }) => {
      await (await client()).deleteStartupScript(id);
      out(!!o.json, { deleted: id }, () => `deleted startup script ${id}`);
    });

  const networks = p.command('networks').description('Private networks: machines created on the same one reach each other.').addHelpText('after', example('hangar networks', 'hangar networks create backend', 'hangar create --network net_abc'));
  networks
    .command('ls', { isDefault: true })
    .description('List your private networks.')
    .addOption(jsonOption())
    .addHelpText('after', example('hangar networks ls --json'))
    .action(async (o: { json?: boolean }) => {
      const { items } = await (await client()).listNetworks();
      out(!!o.json, items, () => table(['ID', 'NAME', 'MACHINES', 'CREATED'], items.map((x) => [x.id, x.name, String(x.machine_count), relative(x.created_at)])));
    });
  networks
    .command('create <name>')
    .description('Create a private network.')
    .addOption(jsonOption())
    .addHelpText('after', example('hangar networks create backend'))
    .action(async (name: string, o: { json?: boolean }) => {
      const n = await (await client()).createNetwork({ name });
      out(!!o.json, n, () => table(['ID', 'NAME'], [[n.id, n.name]]));
    });
  networks
    .command('rm <id>')
    .description('Delete a private network (refused while machines are on it).')
    .addOption(jsonOption())
    .addHelpText('after', example('hangar networks rm net_abc'))
    .action(async (id: string, o: { json?: boolean }) => {
      await (await client()).deleteNetwork(id);
      out(!!o.json, { deleted: id }, () => `deleted network ${id}`);
    });

  const pools = p.command('pools').description('Warm pools (admin): machines started ahead of time for matching creates.').addHelpText('after', example('hangar pools', 'hangar pools set py --template python --size 2'));
  pools
    .command('ls', { isDefault: true })
    .description('List warm pools.')
    .addOption(jsonOption())
    .addHelpText('after', example('hangar pools ls'))
    .action(async (o: { json?: boolean }) => {
      const { items } = await (await client()).listWarmPools();
      out(!!o.json, items, () =>
        table(
          ['NAME', 'TEMPLATE', 'SIZE', 'READY', 'HITS', 'MISSES', 'LAST ERROR'],
          items.map((x) => [x.name, x.template, String(x.size), String(x.ready), String(x.hits), String(x.misses), x.last_error ?? '-']),
        ),
      );
    });
  pools
    .command('set <name>')
    .description('Create or change a warm pool.')
    .requiredOption('-t, --template <name>', 'template of its machines')
    .requiredOption('--size <n>', 'idle machines to keep ready', count('--size'))
    .option('--vcpus <n>', 'vCPUs', count('--vcpus'))
    .option('--memory <mb>', 'memory in MiB', count('--memory'))
    .option('--disk <mb>', 'disk in MiB', count('--disk'))
    .addOption(jsonOption())
    .addHelpText('after', example('hangar pools set py --template python --size 2 --memory 1024'))
    .action(async (name: string, o: { template: string; size: number; vcpus?: number; memory?: number; disk?: number; json?: boolean }) => {
      const config = { ...(o.vcpus !== undefined ? { vcpus: o.vcpus } : {}), ...(o.memory !== undefined ? { memory_mb: o.memory } : {}), ...(o.disk !== undefined ? { disk_mb: o.disk } : {}) };
      const x = await (await client()).putWarmPool(name, { template: o.template, size: o.size, ...(Object.keys(config).length ? { config } : {}) });
      out(!!o.json, x, () => table(['NAME', 'TEMPLATE', 'SIZE', 'READY'], [[x.name, x.template, String(x.size), String(x.ready)]]));
    });
  pools
    .command('rm <name>')
    .description('Delete a warm pool and destroy its idle machines.')
    .addOption(jsonOption())
    .addHelpText('after', example('hangar pools rm py'))
    .action(async (name: string, o: { json?: boolean }) => {
      await (await client()).deleteWarmPool(name);
      out(!!o.json, { deleted: name }, () => `deleted pool ${name}`);
    });

  const hosts = p.command('hosts').description('Hosts sharing the database (admin): list, drain, undrain.').addHelpText('after', example('hangar hosts', 'hangar hosts drain rack1/host-7'));
  hosts
    .command('ls', { isDefault: true })
    .description('List hosts.')
    .addOption(jsonOption())
    .addHelpText('after', example('hangar hosts ls'))
    .action(async (o: { json?: boolean }) => {
      const { items } = await (await client()).listHosts();
      out(!!o.json, items, () =>
        table(
          ['ID', 'STATE', 'MACHINES', 'CAPACITY', 'HEARTBEAT', 'URL'],
          items.map((h) => [h.id, h.state === 'down' ? `down: ${h.down_reason ?? ''}` : h.state, String(h.machines), String(h.capacity_machines), h.heartbeat_at, h.url ?? '-']),
        ),
      );
    });
  for (const [verb, draining] of [['drain', true], ['undrain', false]] as const) {
    hosts
      .command(`${verb} <id>`)
      .description(draining ? 'Drain a host: it runs its machines on and gets no new ones; its paused machines move to hosts sharing its snapshots directory.' : 'End draining a host: it takes new machines again.')
      .addOption(jsonOption())
      .addHelpText('after', example(`hangar hosts ${verb} rack1/host-7`))
      .action(async (id: string, o: { json?: boolean }) => {
        const h = await (await client()).drainHost(id, draining);
        out(!!o.json, h, () => `host ${h.id} is ${h.state}`);
      });
  }
}
