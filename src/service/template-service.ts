/**
 * Which template a name means for a team, and the versions machines run on. Three kinds
 * of template answer to a name, first match wins:
 *  1. the team's own built templates (newest ready version),
 *  2. server-wide built templates (built by admins),
 *  3. directory templates (`base`, `desktop`, and the server-wide `python` and `node`,
 *     which are built on the host the first time a machine needs them).
 * A machine keeps the version it was created from (`templateBuild`), deleted or not.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { HangarError } from '../domain/errors.js';
import type { BuiltTemplate, TemplateBuildRecord } from '../domain/template.js';
import type { Store } from '../store/store.js';
import type { LayerStore } from '../templates/layers.js';
import type { Template, TemplateCatalog } from '../templates/templates.js';
import type { ServiceLogger } from './machine-core.js';

/** What the machine operations need to know about templates. */
export interface TemplateResolver {
  /** The template a team gets by this name (null team: server-wide ones only), or null. */
  resolve(teamId: string | null, name: string): Promise<Template | null>;
  /** The template version a machine or snapshot runs on (a deleted version too), or null when it is gone. */
  ofRecord(r: { template: string; templateBuild: string | null }): Promise<Template | null>;
  /** Names a team may create machines from, for error messages. */
  names(teamId: string | null): Promise<string[]>;
  /** Snapshots that belong to template versions (their services), which are no machine's. */
  snapshotIds(): Promise<string[]>;
}

/** A superseded or deleted version stays this long after it stopped being current: a create may have just resolved it. */
const COLLECT_GRACE_MS = 60_000;

/** Directory templates the server builds on the host the first time one is needed (scripts/build-builtin-template.sh). */
export const ON_DEMAND_TEMPLATES = ['python', 'node'] as const;

export interface TemplateServiceOptions {
  store: Store;
  catalog: TemplateCatalog;
  layers: LayerStore;
  log: ServiceLogger;
  /** Builds an on-demand template into the shared template directory; null: they are never built. */
  builtinScript: string | null;
  /** Where on-demand templates go (the first shared template directory). */
  builtinDir: string | null;
  /** Remove a service snapshot's files (the runtime's). */
  deleteSnapshot: (id: string) => Promise<void>;
}

/** A template version as machines see it. */
export function builtTemplate(b: TemplateBuildRecord, r: BuiltTemplate, layers: LayerStore): Template {
  const paths = r.layers.map((d) => layers.path(d));
  return {
    name: b.name,
    description: b.spec.description,
    init: r.init,
    env: r.env,
    cwd: r.cwd,
    runtime: 'runc',
    created_at: new Date(b.finishedAt ?? b.createdAt).toISOString(),
    rootfs: paths[0]!,
    layers: paths,
    buildId: b.id,
    teamId: b.teamId,
    version: b.version,
    user: r.user,
    startSnapshotId: r.startSnapshotId,
    ...(r.desktop ? { desktop: r.desktop } : {}),
  };
}

/** A row of the template list: a built template's newest build, a directory template, or an on-demand one not built yet. */
export type TemplateListing =
  | { kind: 'built'; build: TemplateBuildRecord }
  | { kind: 'directory'; template: Template }
  | { kind: 'on_demand'; name: string };

const listingName = (l: TemplateListing): string => (l.kind === 'built' ? l.build.name : l.kind === 'directory' ? l.template.name : l.name);

function templateNotFound(name: string): HangarError {
  return new HangarError('NOT_FOUND', `Template ${name} does not exist for this team; list templates with GET /v1/templates.`);
}

export class TemplateService implements TemplateResolver {
  private readonly onDemand = new Map<string, Promise<void>>();

  constructor(private readonly o: TemplateServiceOptions) {}

  get catalog(): TemplateCatalog {
    return this.o.catalog;
  }

  async resolve(teamId: string | null, name: string): Promise<Template | null> {
    for (const team of teamId === null ? [null] : [teamId, null]) {
      const b = await this.o.store.currentTemplate(team, name);
      if (b?.result) return builtTemplate(b, b.result, this.o.layers);
    }
    const dir = await this.o.catalog.get(name);
    if (dir) return dir;
    if ((ON_DEMAND_TEMPLATES as readonly string[]).includes(name) && this.o.builtinScript && this.o.builtinDir) {
      await this.buildOnDemand(name);
      return this.o.catalog.get(name);
    }
    return null;
  }

  async ofRecord(r: { template: string; templateBuild: string | null }): Promise<Template | null> {
    if (r.templateBuild === null) return this.o.catalog.get(r.template);
    const b = await this.o.store.getTemplateBuild(r.templateBuild);
    return b?.result ? builtTemplate(b, b.result, this.o.layers) : null;
  }

  async names(teamId: string | null): Promise<string[]> {
    const names = new Set((await this.o.catalog.list()).map((t) => t.name));
    if (this.o.builtinScript && this.o.builtinDir) for (const n of ON_DEMAND_TEMPLATES) names.add(n);
    if (teamId !== null) {
      let after: string | null = null;
      for (;;) {
        const page = await this.o.store.pageTemplates(teamId, after, 500);
        for (const b of page) names.add(b.name);
        if (page.length < 500) break;
        after = page[page.length - 1]!.name;
      }
    }
    return [...names].sort();
  }

  /** The template a create names, or 422 UNKNOWN_TEMPLATE listing the ones the team has. */
  async require(teamId: string | null, name: string): Promise<Template> {
    const t = await this.resolve(teamId, name);
    if (t) return t;
    const known = await this.names(teamId);
    throw new HangarError('UNKNOWN_TEMPLATE', `Template "${name}" does not exist. Available: ${known.join(', ') || 'none'}.`, { template: name, available: known });
  }

  /**
   * Build an on-demand directory template once per host: the script takes a host-wide
   * lock, so servers sharing the directory build it once; later calls find it built.
   */
  private buildOnDemand(name: string): Promise<void> {
    const running = this.onDemand.get(name);
    if (running) return running;
    const p = new Promise<void>((resolve, reject) => {
      this.o.log.info({ template: name }, 'building an on-demand template (first use on this host)');
      const child = spawn('bash', [this.o.builtinScript!, name], {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, HANGAR_TEMPLATE_DIR: this.o.builtinDir! },
      });
      let tail = '';
      const keep = (c: Buffer): void => void (tail = (tail + c.toString('utf8')).slice(-2000));
      child.stdout.on('data', keep);
      child.stderr.on('data', keep);
      child.on('error', reject);
      child.on('close', (code) => {
        this.o.catalog.invalidate(name);
        if (code === 0) resolve();
        else reject(new HangarError('RUNTIME_FAILED', `Template "${name}" could not be built on this host: ${tail.trim().split('\n').slice(-3).join(' / ')}`));
      });
    }).finally(() => this.onDemand.delete(name));
    this.onDemand.set(name, p);
    return p;
  }

  async snapshotIds(): Promise<string[]> {
    return (await this.o.store.allTemplateBuilds()).flatMap((b) => (b.result?.startSnapshotId ? [b.result.startSnapshotId] : []));
  }

  /**
   * Remove what no template version needs any more: versions that are no longer current
   * (superseded or deleted) and that no machine or snapshot runs on, with their service
   * snapshots, then every layer no remaining version lists (except `pinned`: a running
   * build's). Failed builds keep their records and logs.
   */
  async collect(pinned: ReadonlySet<string>, now = Date.now()): Promise<{ versions: number; layers: number }> {
    const { store } = this.o;
    const builds = await store.allTemplateBuilds();
    const current = new Map<string, TemplateBuildRecord>();
    for (const b of builds) {
      if (b.status !== 'ready' || b.deletedAt !== null) continue;
      const key = `${b.teamId ?? ''}\0${b.name}`;
      const seen = current.get(key);
      if (!seen || seen.version < b.version) current.set(key, b);
    }
    const keep = new Set<string>();
    let versions = 0;
    for (const b of builds) {
      if (!b.result) continue;
      const head = current.get(`${b.teamId ?? ''}\0${b.name}`);
      const retiredAt = b.deletedAt ?? (head && head.id !== b.id ? (head.finishedAt ?? head.createdAt) : null);
      const users = retiredAt === null ? null : await store.templateBuildUsers(b.id);
      if (retiredAt !== null && now - retiredAt >= COLLECT_GRACE_MS && users!.machines === 0 && users!.snapshots === 0) {
        if (b.result.startSnapshotId) await this.o.deleteSnapshot(b.result.startSnapshotId);
        await store.dropTemplateBuild(b.id);
        versions++;
        continue;
      }
      for (const d of b.result.layers) keep.add(d);
    }
    let layers = 0;
    for (const d of await this.o.layers.list()) {
      if (keep.has(d) || pinned.has(d)) continue;
      await this.o.layers.remove(d);
      layers++;
    }
    return { versions, layers };
  }

  /** One page of the templates a team sees (directory, server-wide and its own), by name after `after`. */
  async page(teamId: string, after: string | null, limit: number, directoryOnly = false): Promise<{ items: TemplateListing[]; more: boolean }> {
    const builds = directoryOnly ? [] : await this.o.store.pageTemplates(teamId, after, limit + 1);
    const dirs = (await this.o.catalog.list()).filter((t) => after === null || t.name > after);
    const items: TemplateListing[] = [
      ...builds.map((b): TemplateListing => ({ kind: 'built', build: b })),
      ...dirs.map((t): TemplateListing => ({ kind: 'directory', template: t })),
    ];
    if (this.o.builtinScript && this.o.builtinDir) {
      for (const n of ON_DEMAND_TEMPLATES) {
        if ((after === null || n > after) && !dirs.some((t) => t.name === n)) items.push({ kind: 'on_demand', name: n });
      }
    }
    items.sort((a, b) => (listingName(a) < listingName(b) ? -1 : listingName(a) > listingName(b) ? 1 : 0));
    return { items: items.slice(0, limit), more: items.length > limit };
  }

  /** The current version of a build's name. */
  current(b: TemplateBuildRecord): Promise<TemplateBuildRecord | null> {
    return this.o.store.currentTemplate(b.teamId, b.name);
  }

  /** A template by name as the team sees it, with its current version; 404 when it has none. */
  async describe(teamId: string, name: string): Promise<{ listing: TemplateListing; current: TemplateBuildRecord | null }> {
    for (const team of [teamId, null]) {
      const latest = await this.o.store.latestTemplateBuild(team, name);
      if (latest) return { listing: { kind: 'built', build: latest }, current: await this.o.store.currentTemplate(team, name) };
    }
    const dir = await this.o.catalog.get(name);
    if (dir) return { listing: { kind: 'directory', template: dir }, current: null };
    if ((ON_DEMAND_TEMPLATES as readonly string[]).includes(name) && this.o.builtinScript) return { listing: { kind: 'on_demand', name }, current: null };
    throw templateNotFound(name);
  }

  /** A build of a template the team sees, by id; 404 otherwise. */
  async build(teamId: string, name: string, buildId: string): Promise<TemplateBuildRecord> {
    const b = await this.o.store.getTemplateBuild(buildId);
    if (!b || b.name !== name || (b.teamId !== null && b.teamId !== teamId) || b.deletedAt !== null) {
      throw new HangarError('NOT_FOUND', `Template ${name} has no build ${buildId} for this team; list its builds' ids with GET /v1/templates/${name}.`);
    }
    return b;
  }

  /**
   * Delete a template name (every version): refused with 409 while a machine or snapshot
   * runs on any of its versions (they would lose their root filesystem); its layers go
   * once nothing lists them. Server-wide ones need an admin; directory templates stay.
   */
  async remove(teamId: string, isAdmin: boolean, name: string, pinned: ReadonlySet<string>): Promise<void> {
    const own = await this.o.store.latestTemplateBuild(teamId, name);
    const shared = own ? null : await this.o.store.latestTemplateBuild(null, name);
    if (!own && !shared) {
      if (await this.isDirectoryName(name)) throw new HangarError('FORBIDDEN', `"${name}" is a directory template of this server; it cannot be deleted through the API.`);
      throw templateNotFound(name);
    }
    if (shared && !isAdmin) throw new HangarError('FORBIDDEN', `"${name}" is a server-wide template; only an admin API key may delete it.`);
    const team = own ? teamId : null;
    if ((own ?? shared)!.status === 'building') throw new HangarError('TEMPLATE_IN_USE', `Template ${name} is being built; wait for the build to end, then delete it.`);
    let machines = 0;
    let snapshots = 0;
    for (const b of await this.o.store.allTemplateBuilds()) {
      if (b.name !== name || b.teamId !== team || b.deletedAt !== null) continue;
      const u = await this.o.store.templateBuildUsers(b.id);
      machines += u.machines;
      snapshots += u.snapshots;
    }
    if (machines + snapshots > 0) {
      throw new HangarError('TEMPLATE_IN_USE', `Template ${name} has ${machines} machine(s) and ${snapshots} snapshot(s) on it; destroy them (and delete the snapshots) first.`, { machines, snapshots });
    }
    await this.o.store.deleteTemplateName(team, name, Date.now());
    await this.collect(pinned, Date.now() + COLLECT_GRACE_MS);
  }

  /** Whether a name is a directory template (or an on-demand one), which team templates may not take. */
  async isDirectoryName(name: string): Promise<boolean> {
    return (ON_DEMAND_TEMPLATES as readonly string[]).includes(name) || (await this.o.catalog.get(name)) !== null;
  }

  /** Where the on-demand templates are built (for the docs and /v1/info). */
  builtinPath(name: string): string | null {
    return this.o.builtinDir ? join(this.o.builtinDir, name) : null;
  }
}
