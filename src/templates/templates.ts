import { lstat, readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { ISOLATIONS } from '../domain/machine.js';

/** A template's manifest (`template.json` beside its `rootfs/`). */
export const TemplateManifestSchema = z.object({
  name: z.string().regex(/^[a-z0-9][a-z0-9._-]{0,62}$/),
  description: z.string().default(''),
  /** Argv of the machine's init. */
  init: z.array(z.string()).min(1),
  /** Environment every machine of this template starts with. */
  env: z.record(z.string(), z.string()).default({}),
  /** Default working directory. */
  cwd: z.string().default('/root'),
  /** Runtime the template was made for, and its version, as reported by the compute listing. */
  runtime: z.string().default('runc'),
  created_at: z.string(),
  /** The isolation tier its machines get unless a create names one (see docs/security.md, Tiers). @default 'container' */
  isolation: z.enum(ISOLATIONS).optional(),
  /** Present when init runs a graphical desktop served over VNC (see `desktop.ts`). */
  desktop: z
    .strictObject({
      /** TCP port the VNC server listens on inside the machine. */
      vnc_port: z.number().int().min(1).max(65_535),
      /** Screen size of the X server, in pixels. */
      width: z.number().int().min(64).max(8192),
      height: z.number().int().min(64).max(8192),
      /**
       * Argv run inside a running machine, with HANGAR_VNC_PASSWORD set, to change its VNC
       * password: a fork's restored VNC server still holds its source's until this runs.
       */
      set_password: z.array(z.string()).min(1).optional(),
    })
    .optional(),
});
/** A parsed template manifest. */
export type TemplateManifest = z.infer<typeof TemplateManifestSchema>;

/** A template ready to start machines from. */
export interface Template extends TemplateManifest {
  /** Its topmost layer (for a directory template, its one root filesystem). */
  rootfs: string;
  /** Every layer of its root filesystem, topmost first. */
  layers: string[];
  /** The build this template version came from; null for directory templates (`base`, `desktop`…). */
  buildId: string | null;
  /** The team that owns it; null for server-wide templates. */
  teamId: string | null;
  /** Its version: 1 for directory templates, counting up with each build of the name otherwise. */
  version: number;
  /** User commands run as by default (`root`, a name, or `uid[:gid]`). */
  user: string;
  /** A live snapshot of a machine running the template's start command, which creates fork from; null for a cold boot. */
  startSnapshotId: string | null;
}

/**
 * Templates are directories, each with a manifest and a rootfs, found in an ordered list
 * of directories: `<data>/templates` first, then the shared read-only ones of
 * HANGAR_TEMPLATE_PATH. The first directory holding a name wins.
 */
export class TemplateCatalog {
  private readonly cache = new Map<string, Template>();
  private readonly dirs: readonly string[];

  constructor(dirs: string | readonly string[]) {
    this.dirs = typeof dirs === 'string' ? [dirs] : [...dirs];
  }

  /** The template of this name, or null. Manifests are read once and cached. */
  async get(name: string): Promise<Template | null> {
    const hit = this.cache.get(name);
    if (hit) return hit;
    if (!/^[a-z0-9][a-z0-9._-]{0,62}$/.test(name)) return null;
    for (const dir of this.dirs) {
      const base = join(dir, name);
      const raw = await readFile(join(base, 'template.json'), 'utf8').catch(() => null);
      if (raw === null) continue;
      const manifest = TemplateManifestSchema.parse(JSON.parse(raw));
      const rootfs = join(base, 'rootfs');
      const t: Template = { ...manifest, rootfs, layers: [rootfs], buildId: null, teamId: null, version: 1, user: 'root', startSnapshotId: null };
      this.cache.set(name, t);
      return t;
    }
    return null;
  }

  /** Every template with a readable manifest, by name. */
  async list(): Promise<Template[]> {
    const names = new Set<string>();
    for (const dir of this.dirs) {
      for (const n of await readdir(dir).catch(() => [] as string[])) names.add(n);
    }
    const out: Template[] = [];
    for (const n of [...names].sort()) {
      const t = await this.get(n).catch(() => null);
      if (t) out.push(t);
    }
    return out;
  }

  /** Forget cached manifests (after a template is rebuilt). */
  invalidate(name: string): void {
    this.cache.delete(name);
  }
}

/**
 * Why `dir` cannot be a working directory in machines of this template, or null if it
 * can (it exists as a directory, or will be created). Symlinks are refused: a machine's
 * cwd is created from the host before the machine starts and must not leave its root.
 */
export async function cwdProblem(t: Pick<Template, 'name' | 'layers'>, dir: string): Promise<string | null> {
  let at = '';
  for (const part of dir.split('/').filter(Boolean)) {
    at += `/${part}`;
    // The topmost layer holding the path decides what it is (a whiteout hides it below: then it is made anew).
    let st = null;
    for (const layer of t.layers) {
      st = await lstat(join(layer, at)).catch(() => null);
      if (st !== null) break;
    }
    if (st === null || (st.isCharacterDevice() && st.rdev === 0)) return null;
    if (st.isSymbolicLink()) return `${at} is a symbolic link in template ${t.name}; use the path it points to`;
    if (!st.isDirectory()) return `${at} is a file in template ${t.name}, not a directory`;
  }
  return null;
}
