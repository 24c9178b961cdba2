import { lstat, readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';

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
});
/** A parsed template manifest. */
export type TemplateManifest = z.infer<typeof TemplateManifestSchema>;

/** A template ready to start machines from. */
export interface Template extends TemplateManifest {
  rootfs: string;
}

/** Templates are directories under `<data>/templates`, each with a manifest and a rootfs. */
export class TemplateCatalog {
  private readonly cache = new Map<string, Template>();

  constructor(readonly dir: string) {}

  /** The template of this name, or null. Manifests are read once and cached. */
  async get(name: string): Promise<Template | null> {
    const hit = this.cache.get(name);
    if (hit) return hit;
    if (!/^[a-z0-9][a-z0-9._-]{0,62}$/.test(name)) return null;
    const base = join(this.dir, name);
    const raw = await readFile(join(base, 'template.json'), 'utf8').catch(() => null);
    if (raw === null) return null;
    const manifest = TemplateManifestSchema.parse(JSON.parse(raw));
    const t: Template = { ...manifest, rootfs: join(base, 'rootfs') };
    this.cache.set(name, t);
    return t;
  }

  /** Every template with a readable manifest. */
  async list(): Promise<Template[]> {
    const names = await readdir(this.dir).catch(() => [] as string[]);
    const out: Template[] = [];
    for (const n of names.sort()) {
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
export async function cwdProblem(t: Template, dir: string): Promise<string | null> {
  let at = '';
  for (const part of dir.split('/').filter(Boolean)) {
    at += `/${part}`;
    const st = await lstat(join(t.rootfs, at)).catch(() => null);
    if (st === null) return null;
    if (st.isSymbolicLink()) return `${at} is a symbolic link in template ${t.name}; use the path it points to`;
    if (!st.isDirectory()) return `${at} is a file in template ${t.name}, not a directory`;
  }
  return null;
}
