import { execFile } from 'node:child_process';
import { chmod, copyFile, mkdir, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { TemplateManifest } from './templates.js';

const execFileP = promisify(execFile);

/** Options for building the `base` template. */
export interface BaseTemplateOptions {
  /** Where templates live. */
  templatesDir: string;
  /** A statically linked busybox. @default '/bin/busybox' */
  busyboxPath: string;
}

const FILES: Record<string, string> = {
  'etc/passwd': 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n',
  'etc/group': 'root:x:0:\ntty:x:5:\nnogroup:x:65534:\n',
  'etc/shadow': 'root:*:19000:0:99999:7:::\n',
  // busybox init reaps every orphan; with no respawn entries it simply waits.
  'etc/inittab': '::sysinit:/bin/true\n',
  'etc/hosts': '127.0.0.1 localhost\n::1 localhost\n',
  'etc/nsswitch.conf': 'hosts: files dns\n',
  'etc/profile': 'export PS1="\\h:\\w\\$ "\n',
};

/**
 * Build the `base` template from busybox-static, offline: every applet linked,
 * busybox `init` as pid 1. Writes into a temporary directory and renames, so a
 * half-built template is never visible.
 */
export async function buildBaseTemplate(opts: BaseTemplateOptions): Promise<TemplateManifest> {
  const bb = await stat(opts.busyboxPath).catch(() => null);
  if (!bb) throw new Error(`${opts.busyboxPath} not found: install busybox-static`);
  const { stdout: fileInfo } = await execFileP(opts.busyboxPath, ['--list-full']);
  const applets = fileInfo.split('\n').map((s) => s.trim()).filter(Boolean);

  const final = join(opts.templatesDir, 'base');
  const tmp = join(opts.templatesDir, `.base-${process.pid}-${Date.now()}`);
  const rootfs = join(tmp, 'rootfs');
  for (const d of ['bin', 'sbin', 'usr/bin', 'usr/sbin', 'etc', 'proc', 'sys', 'dev', 'tmp', 'root', 'home', 'var/log', 'var/tmp', 'run', 'mnt']) {
    await mkdir(join(rootfs, d), { recursive: true });
  }
  await chmod(join(rootfs, 'tmp'), 0o1777);
  await chmod(join(rootfs, 'var/tmp'), 0o1777);
  await chmod(join(rootfs, 'root'), 0o700);
  await copyFile(opts.busyboxPath, join(rootfs, 'bin/busybox'));
  await chmod(join(rootfs, 'bin/busybox'), 0o755);
  for (const applet of applets) {
    if (applet === 'bin/busybox' || applet.includes('..')) continue;
    await symlink('/bin/busybox', join(rootfs, applet)).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'EEXIST') throw err;
    });
  }
  for (const [path, content] of Object.entries(FILES)) {
    await writeFile(join(rootfs, path), content);
  }
  await chmod(join(rootfs, 'etc/shadow'), 0o600);

  const manifest: TemplateManifest = {
    name: 'base',
    description: `busybox (${applets.length} applets) with busybox init as pid 1`,
    init: ['/sbin/init'],
    env: {
      PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
      TERM: 'xterm',
      HOME: '/root',
    },
    cwd: '/root',
    runtime: 'runc',
    created_at: new Date().toISOString(),
  };
  await writeFile(join(tmp, 'template.json'), JSON.stringify(manifest, null, 2));
  await rm(final, { recursive: true, force: true });
  await rename(tmp, final);
  return manifest;
}

/** Build `base` unless it exists already. Returns true when it was built now. */
export async function ensureBaseTemplate(opts: BaseTemplateOptions): Promise<boolean> {
  const exists = await stat(join(opts.templatesDir, 'base', 'template.json')).catch(() => null);
  if (exists) return false;
  await mkdir(opts.templatesDir, { recursive: true });
  await buildBaseTemplate(opts);
  return true;
}
