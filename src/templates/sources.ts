/**
 * Where a build's first layer comes from, made on the host: a Debian suite by mmdebstrap
 * (from the mirror apt is configured with), or an OCI / docker image archive unpacked by
 * skopeo and umoci. Each writes a root filesystem tree into a directory it is given and
 * reports the tools' output, line by line, to the build log.
 */
import { spawn } from 'node:child_process';
import { readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';

/** A line of a tool's output, for the build log. */
export type LogLine = (line: string) => void;

/** A host tool failed; `message` is safe to show the build's owner. */
export class SourceError extends Error {}

/** Run a tool, its stdout and stderr going to `log` line by line; reject when it fails or `signal` aborts. */
export function runLogged(cmd: string, args: string[], log: LogLine, signal?: AbortSignal, env?: NodeJS.ProcessEnv): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: env ?? process.env, signal });
    let tail = '';
    const lines = (c: Buffer): void => {
      const text = c.toString('utf8');
      tail = (tail + text).slice(-1000);
      for (const l of text.split('\n')) if (l.trim() !== '') log(l.replace(/\r/g, ''));
    };
    child.stdout.on('data', lines);
    child.stderr.on('data', lines);
    child.on('error', (err) => reject(signal?.aborted ? new SourceError(`${cmd} was stopped: the build timed out`) : new SourceError(`${cmd} could not run: ${err.message}`)));
    child.on('close', (code) => {
      if (code === 0) resolve();
      else reject(new SourceError(`${cmd} exited with ${code}: ${tail.trim().split('\n').slice(-3).join(' / ')}`));
    });
  });
}

/** The Debian mirror apt on this host uses (deb822 sources first, then sources.list). */
export async function aptMirror(): Promise<string> {
  const deb822 = await readFile('/etc/apt/sources.list.d/debian.sources', 'utf8').catch(() => '');
  const m = /^URIs:\s*(\S+)/m.exec(deb822);
  if (m) return m[1]!;
  const list = await readFile('/etc/apt/sources.list', 'utf8').catch(() => '');
  const l = /^deb\s+(?:\[[^\]]*\]\s+)?(\S+)/m.exec(list);
  if (l) return l[1]!;
  throw new SourceError('this server has no Debian mirror in its apt configuration, so Debian templates cannot be built here');
}

/** Debian suites a build may name. */
export const DEBIAN_SUITES = ['bookworm', 'trixie', 'forky', 'sid', 'stable', 'testing', 'unstable'] as const;

/**
 * A Debian root filesystem (variant `apt`: essential packages, apt and what they need)
 * with `packages`, into `dest` (created). Downloaded .deb files and package lists are removed.
 */
export async function debianTree(dest: string, suite: string, packages: readonly string[], log: LogLine, signal?: AbortSignal): Promise<void> {
  const mirror = await aptMirror();
  log(`mmdebstrap ${suite} from ${mirror}${packages.length ? ` with ${packages.join(' ')}` : ''}`);
  const args = ['--variant=apt', '--mode=root', '--format=directory', '--quiet'];
  if (packages.length) args.push(`--include=${packages.join(',')}`);
  for (const p of ['/usr/share/man/*', '/usr/share/doc/*', '/usr/share/locale/*', '/usr/share/info/*']) args.push(`--dpkgopt=path-exclude=${p}`);
  args.push('--customize-hook=rm -rf "$1"/var/cache/apt/archives/*.deb "$1"/var/lib/apt/lists/*_Packages "$1"/var/log/apt/*');
  args.push(suite, dest, mirror);
  await runLogged('mmdebstrap', args, log, signal);
}

/** What an image's config says its containers run with. */
export interface ImageConfig {
  env: Record<string, string>;
  cwd: string | null;
  user: string | null;
  /** Entrypoint then Cmd, as the image gives them (recorded; machines run Hangar's init). */
  cmd: string[];
}

/** The JSON of a blob `sha256:…` of an OCI image layout. */
async function blobJson(layout: string, digest: string): Promise<Record<string, unknown>> {
  const m = /^sha256:([0-9a-f]{64})$/.exec(digest);
  if (!m) throw new SourceError(`the image names a blob ${digest} that is not a sha256 digest`);
  return JSON.parse(await readFile(join(layout, 'blobs', 'sha256', m[1]!), 'utf8')) as Record<string, unknown>;
}

/** The config of the one image in an OCI layout (tag `img`). */
async function imageConfig(layout: string): Promise<ImageConfig> {
  const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as { manifests?: { digest: string }[] };
  const manifestDigest = index.manifests?.[0]?.digest;
  if (!manifestDigest) throw new SourceError('the image has no manifest');
  const manifest = await blobJson(layout, manifestDigest);
  const configDigest = (manifest.config as { digest?: string } | undefined)?.digest;
  if (!configDigest) throw new SourceError('the image manifest has no config');
  const config = ((await blobJson(layout, configDigest)).config ?? {}) as {
    Env?: string[];
    WorkingDir?: string;
    User?: string;
    Entrypoint?: string[] | null;
    Cmd?: string[] | null;
  };
  const env: Record<string, string> = {};
  for (const kv of config.Env ?? []) {
    const eq = kv.indexOf('=');
    if (eq > 0) env[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  return {
    env,
    cwd: config.WorkingDir || null,
    user: config.User || null,
    cmd: [...(config.Entrypoint ?? []), ...(config.Cmd ?? [])],
  };
}

/** How skopeo names an image archive or layout at `path`: an OCI layout directory, an OCI archive or a docker archive. */
export async function imageTransport(path: string): Promise<string> {
  const st = await stat(path).catch(() => null);
  if (!st) throw new SourceError(`no image at ${path}`);
  if (st.isDirectory()) {
    if (!(await stat(join(path, 'oci-layout')).catch(() => null))) throw new SourceError(`${path} is a directory but not an OCI image layout (no oci-layout file)`);
    return `oci:${path}`;
  }
  const names = await new Promise<string>((resolve) => {
    const child = spawn('tar', ['--list', '--file', path], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => {
      if (out.length < 1_000_000) out += c.toString('utf8');
    });
    child.on('error', () => resolve(''));
    child.on('close', (code) => resolve(code === 0 ? out : ''));
  });
  const list = names.split('\n').map((n) => n.replace(/^\.\//, ''));
  if (list.includes('oci-layout')) return `oci-archive:${path}`;
  if (list.includes('manifest.json')) return `docker-archive:${path}`;
  throw new SourceError('the archive is neither an OCI image (no oci-layout) nor a docker image (no manifest.json); make it with `podman save` or `skopeo copy`');
}

/**
 * Unpack an image into `dest` (created): skopeo copies it into an OCI layout in `work`,
 * umoci unpacks its layers in order. Returns the image's config.
 */
export async function imageTree(path: string, dest: string, work: string, log: LogLine, signal?: AbortSignal): Promise<ImageConfig> {
  const transport = await imageTransport(path);
  const layout = join(work, 'oci');
  try {
    log(`skopeo copy ${transport.split(':')[0]} image`);
    await runLogged('skopeo', ['--insecure-policy', 'copy', '--quiet', transport, `oci:${layout}:img`], log, signal);
    const config = await imageConfig(layout);
    log('umoci raw unpack');
    await runLogged('umoci', ['raw', 'unpack', '--image', `${layout}:img`, dest], log, signal);
    return config;
  } finally {
    await rm(layout, { recursive: true, force: true });
  }
}
