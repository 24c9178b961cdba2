/** Verbs that move bytes in and out of a machine: exec, ps, logs, cp (files and, with -r, directories as tar). */
import { spawn } from 'node:child_process';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { Readable } from 'node:stream';
import type { Command } from 'commander';
import type { HangarClient, Process } from '../../sdk/src/index.js';
import { client, UsageError } from './config.js';
import { example, jsonOption } from './options.js';
import { out, relative, spin, table } from './output.js';

/** `mch_id:/path`, or null for a local path. */
export const remote = (spec: string): { id: string; path: string } | null => {
  const m = /^(mch_[A-Za-z0-9]+):(\/.*)$/.exec(spec);
  return m ? { id: m[1]!, path: m[2]! } : null;
};

const pidOf = (v: string): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`a process id is a positive whole number, not "${v}"`);
  return n;
};

/** Run the host's tar with `args`, fed `input` (an extraction); its stdout when it succeeds. */
function tar(args: string[], input?: Readable): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = spawn('tar', args, { stdio: [input ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
    const outChunks: Buffer[] = [];
    const errChunks: Buffer[] = [];
    child.stdout?.on('data', (b: Buffer) => outChunks.push(b));
    child.stderr?.on('data', (b: Buffer) => errChunks.push(b));
    child.on('error', (err) => reject(new Error(`cannot run tar on this computer: ${err.message}`)));
    if (input && child.stdin) {
      input.on('error', (err) => child.kill() && reject(err));
      input.pipe(child.stdin);
    }
    child.on('close', (code) =>
      code === 0 ? resolve(Buffer.concat(outChunks)) : reject(new Error(`tar ${args.join(' ')} failed: ${Buffer.concat(errChunks).toString().trim() || `exit ${code}`}`)),
    );
  });
}

const processRow = (x: Process): string[] => [
  String(x.pid),
  x.status,
  x.exit_code === null ? (x.signal ?? '-') : String(x.exit_code),
  relative(x.started_at),
  Array.isArray(x.cmd) ? x.cmd.join(' ') : x.cmd,
];

/** Copy one file or (recursive) one directory; the byte count that went over the wire. */
async function copy(c: HangarClient, from: string, to: string, recursive: boolean): Promise<number> {
  const src = remote(from);
  const dst = remote(to);
  if ((src && dst) || (!src && !dst)) throw new UsageError('exactly one side must be a machine path (mch_id:/path)');
  if (src) {
    const isDir = (await c.stat(src.id, src.path)).type === 'directory';
    if (isDir !== recursive) throw new UsageError(isDir ? `${from} is a directory: use cp -r` : `${from} is not a directory: drop -r`);
    if (!recursive) {
      const bytes = await c.readFile(src.id, src.path);
      const local = to.endsWith('/') || (await stat(to).then((s) => s.isDirectory(), () => false)) ? join(to, basename(src.path)) : to;
      await writeFile(local, bytes);
      return bytes.length;
    }
    await mkdir(to, { recursive: true });
    let bytes = 0;
    const body = Readable.fromWeb((await c.downloadArchive(src.id, src.path)) as Parameters<typeof Readable.fromWeb>[0]).on('data', (b: Buffer) => (bytes += b.length));
    await tar(['-C', to, '-xf', '-'], body);
    return bytes;
  }
  const local = await stat(from).catch(() => {
    throw new UsageError(`${from} does not exist on this computer`);
  });
  if (local.isDirectory() !== recursive) throw new UsageError(local.isDirectory() ? `${from} is a directory: use cp -r` : `${from} is not a directory: drop -r`);
  if (!recursive) {
    const bytes = await readFile(from);
    const intoDir = dst!.path.endsWith('/') || (await c.stat(dst!.id, dst!.path).then((e) => e.type === 'directory', () => false));
    await c.writeFile(dst!.id, intoDir ? `${dst!.path.replace(/\/+$/, '')}/${basename(from)}` : dst!.path, bytes);
    return bytes.length;
  }
  return uploadTree(c, from, dst!.id, dst!.path);
}

/** Stream the host's `tar` of a directory into the machine as it is made; a tar that fails cuts the upload. */
async function uploadTree(c: HangarClient, dir: string, id: string, path: string): Promise<number> {
  const child = spawn('tar', ['-C', dir, '-cf', '-', '.'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const cut = new AbortController();
  let errText = '';
  child.stderr.on('data', (b: Buffer) => (errText += b.toString()));
  const exited = new Promise<Error | null>((resolve) => {
    child.on('error', (err) => resolve(new Error(`cannot run tar on this computer: ${err.message}`)));
    child.on('close', (code) => resolve(code === 0 ? null : new Error(`tar of ${dir} failed: ${errText.trim() || `exit ${code}`}`)));
  });
  void exited.then((err) => err && cut.abort(err));
  let bytes = 0;
  const body = (Readable.toWeb(child.stdout) as ReadableStream<Uint8Array>).pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform: (chunk, controller) => {
        bytes += chunk.length;
        controller.enqueue(chunk);
      },
    }),
  );
  await c.uploadArchive(id, path, body, { signal: cut.signal });
  const err = await exited;
  if (err) throw err;
  return bytes;
}

/** Add the exec, ps, logs and cp verbs to the program. */
export function addIoCommands(p: Command): void {
  p.command('exec <id> <cmd...>')
    .description("Run a command in a machine, its output streamed; exits with the command's exit code.")
    .option('-d, --detach', 'start it as a background process and print its pid (see `hangar logs`)')
    .option('-w, --workdir <dir>', 'working directory inside the machine')
    .option('-u, --user <user>', 'user inside the machine (name or uid[:gid])')
    .addOption(jsonOption())
    .addHelpText('after', example('hangar exec mch_abc -- python3 -c "print(42)"', 'hangar exec -d mch_abc -- python3 -m http.server 8000'))
    .action(async (id: string, cmd: string[], o: { detach?: boolean; workdir?: string; user?: string; json?: boolean }) => {
      const c = await client();
      const req = { cmd, ...(o.workdir ? { cwd: o.workdir } : {}), ...(o.user ? { user: o.user } : {}) };
      if (o.detach) {
        const proc = await c.startProcess(id, req);
        out(!!o.json, proc, () => String(proc.pid));
        return;
      }
      if (o.json) {
        const r = await c.exec(id, req);
        out(true, r, () => '');
        process.exitCode = r.exit_code;
        return;
      }
      let code = 1;
      for await (const e of c.execStream(id, req)) {
        if (e.type === 'exit') code = e.exitCode;
        else if (e.type === 'stdout') process.stdout.write(e.data);
        else process.stderr.write(e.data);
      }
      process.exitCode = code;
    });

  p.command('ps <id>')
    .description("List a machine's background processes (running ones and the last exited ones).")
    .addOption(jsonOption())
    .addHelpText('after', example('hangar ps mch_abc'))
    .action(async (id: string, o: { json?: boolean }) => {
      const { items } = await (await client()).listProcesses(id);
      out(!!o.json, items, () => table(['PID', 'STATUS', 'EXIT', 'STARTED', 'COMMAND'], items.map(processRow)));
    });

  p.command('logs <id> <pid>')
    .description("Print a background process's output (stdout to stdout, stderr to stderr); --follow streams it until it exits.")
    .option('-f, --follow', 'keep printing as it comes, until the process exits')
    .addOption(jsonOption())
    .addHelpText('after', example('hangar logs mch_abc 42 --follow'))
    .action(async (id: string, pidText: string, o: { follow?: boolean; json?: boolean }) => {
      const pid = pidOf(pidText);
      const c = await client();
      if (!o.follow) {
        const r = await c.processOutput(id, pid);
        if (o.json) out(true, r, () => '');
        else {
          process.stdout.write(r.stdout);
          process.stderr.write(r.stderr);
        }
        return;
      }
      for await (const e of c.followProcess(id, pid)) {
        if (o.json) process.stdout.write(`${JSON.stringify(e)}\n`);
        else if (e.type === 'stdout') process.stdout.write(e.data);
        else if (e.type === 'stderr') process.stderr.write(e.data);
        else if (e.type === 'gap') process.stderr.write(`[${e.missedBytes} bytes of output dropped]\n`);
      }
    });

  p.command('cp <from> <to>')
    .description('Copy a file, or with -r a directory (as tar), to or from a machine; machine paths are mch_id:/path.')
    .option('-r, --recursive', 'copy a directory and everything in it')
    .addOption(jsonOption())
    .addHelpText('after', example('hangar cp ./app.py mch_abc:/root/app.py', 'hangar cp mch_abc:/root/out.txt .', 'hangar cp -r ./site mch_abc:/srv/site', 'hangar cp -r mch_abc:/srv/site ./site-copy'))
    .action(async (from: string, to: string, o: { recursive?: boolean; json?: boolean }) => {
      const c = await client();
      const bytes = await spin(`copying ${from} to ${to}`, !!o.json, () => copy(c, from, to, !!o.recursive));
      const what = o.recursive ? 'bytes of tar' : 'bytes';
      if (o.json) out(true, { from, to, recursive: !!o.recursive, bytes }, () => '');
      else process.stderr.write(`copied ${bytes} ${what} from ${from} to ${to}\n`);
    });
}
