import { randomBytes } from 'node:crypto';
import { posix } from 'node:path';
import { PassThrough, Transform, type Readable } from 'node:stream';
import { HangarError, machineNotFound } from '../domain/errors.js';
import { isSameOrInside, type FileEntry } from '../domain/file-entry.js';
import type { MachineRecord } from '../domain/machine.js';
import type { Caller } from '../domain/team.js';
import { pathWithin } from '../domain/volume.js';
import { AGENT_BINARY_IN_MACHINE } from '../runtime/agent/protocol.js';
import { ExecStartError, type ExecIo, type Runtime } from '../runtime/runtime.js';
import { CappedBuffer } from './capped-buffer.js';
import { FILE_SCRIPTS, parseListing, parseStatLine, scriptFailure, type FailureContext, type FileOperation } from './file-scripts.js';
import type { MachineService } from './machine-service.js';
import { allows, isLive } from '../domain/transitions.js';

/** A transfer (upload, download, archive) is killed after this long. */
export const FILE_TRANSFER_TIMEOUT_MS = 6 * 60 * 60 * 1000;
/** Metadata operations (stat, list, mkdir, move, delete) are killed after this long. */
const METADATA_TIMEOUT_MS = 120_000;
/** A directory listing larger than this (about 200 000 entries) is refused rather than held in memory. */
const LIST_OUTPUT_LIMIT_BYTES = 32 * 1024 * 1024;
/** Output kept from a tool's stderr for the error message. */
const STDERR_LIMIT_BYTES = 16 * 1024;
/** A long transfer keeps its machine active: it is touched this often. */
const ACTIVITY_EVERY_MS = 1_000;
const MIB = 1024 * 1024;

/**
 * Variables of every file script: a known PATH, and UTC so `stat %y` prints +0000
 * whatever the machine's own TZ says.
 */
const SCRIPT_ENV = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', TZ: 'UTC0', LC_ALL: 'C' };

/** Dependencies of the file service. */
export interface FileServiceOptions {
  machines: MachineService;
  runtime: Runtime;
}

/** A file being downloaded: its size (Content-Length) and its bytes, streamed. */
export interface FileDownload {
  size: number;
  body: Readable;
}

/** An upload's body and what the request said about it. */
export interface FileUpload {
  body: Readable;
  /** Content-Length, when the request had one. */
  contentLength?: number;
}

interface ScriptRun {
  op: FileOperation;
  args: string[];
  context: FailureContext;
  stdin?: Readable;
  /** Receives stdout as it comes; without it, stdout is collected (up to `outputLimit`). */
  stdout?: (chunk: Buffer) => void | Promise<void>;
  outputLimit?: number;
  timeoutMs: number;
  signal?: AbortSignal;
}

/**
 * Splits a script's stdout into its first line (a header: a size, or "ok") and the bytes
 * after it, which go to `body` with backpressure: a slow client slows the machine's tool.
 */
class HeaderThenBody {
  /** Room for a few of the agent's output frames, so reading from the machine runs ahead of the client's connection instead of in step with it. */
  readonly body = new PassThrough({ highWaterMark: 1024 * 1024 });
  /** Bytes after the header that reach `body`; the rest is read and dropped. */
  private limit = Infinity;
  private head: Buffer[] = [];
  private headBytes = 0;
  header: string | null = null;
  /** Bytes handed to `body` so far. */
  bodyBytes = 0;
  private onHeader: ((line: string) => void) | null = null;
  readonly headerSeen = new Promise<string>((resolve) => {
    this.onHeader = resolve;
  });

  /** `limitOf` reads the body's length from the header, when the header says it. */
  constructor(private readonly limitOf: (header: string) => number = () => Infinity) {}

  write = (chunk: Buffer): void | Promise<void> => {
    if (this.header === null) {
      const nl = chunk.indexOf(0x0a);
      if (nl < 0) {
        // A header is a few bytes; anything longer is not one (an empty header says so).
        this.headBytes += chunk.length;
        if (this.headBytes <= 64) this.head.push(chunk);
        else {
          this.header = '';
          this.onHeader?.('');
        }
        return;
      }
      this.header = Buffer.concat([...this.head, chunk.subarray(0, nl)]).toString('utf8');
      this.head = [];
      this.limit = this.limitOf(this.header);
      this.onHeader?.(this.header);
      chunk = chunk.subarray(nl + 1);
      if (chunk.length === 0) return;
    }
    if (this.header === '' || this.body.destroyed) return;
    const room = this.limit - this.bodyBytes;
    if (room <= 0) return;
    if (chunk.length > room) chunk = chunk.subarray(0, room);
    this.bodyBytes += chunk.length;
    if (this.body.write(chunk)) return;
    return new Promise((resolve) => {
      const done = (): void => {
        this.body.off('drain', done);
        this.body.off('close', done);
        resolve();
      };
      this.body.on('drain', done);
      this.body.on('close', done);
    });
  };
}

/** Counts bytes passing through and fails once more than `limit` went by. */
function byteLimit(limit: number, onOver: () => void): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      seen += chunk.length;
      if (seen > limit) {
        onOver();
        done(new Error('over the size limit'));
        return;
      }
      done(null, chunk);
    },
  });
}

/**
 * Files inside machines: stat, list, mkdir, move, delete, upload, download and tar
 * archives. Each operation is a short script run as a new process in the running
 * machine (`Runtime.exec`), as root inside it, with the machine's limits, seccomp
 * filter and disk quota: paths are resolved by the machine's kernel in the machine's
 * root, so no path, symlink or race can reach a host file. Every call is activity.
 */
export class FileService {
  constructor(private readonly o: FileServiceOptions) {}

  /** The stat of a path (a symlink itself, not its target). */
  async stat(caller: Caller, id: string, path: string): Promise<FileEntry> {
    await this.runningMachine(caller, id);
    const out = await this.collect({ op: 'stat', args: [path], context: this.ctx(id, 'stat', path), timeoutMs: METADATA_TIMEOUT_MS });
    return this.entry(out, path, id);
  }

  /** The entries of a directory (a symlink to a directory is followed), sorted by path. */
  async list(caller: Caller, id: string, path: string): Promise<FileEntry[]> {
    await this.runningMachine(caller, id);
    const context = this.ctx(id, 'list', path);
    const out = await this.collect({ op: 'list', args: [path], context, timeoutMs: METADATA_TIMEOUT_MS, outputLimit: LIST_OUTPUT_LIMIT_BYTES });
    return parseListing(out, path);
  }

  /** Make a directory and its missing parents (no error when it exists); returns its stat. */
  async mkdir(caller: Caller, id: string, path: string): Promise<FileEntry> {
    await this.runningMachine(caller, id);
    const out = await this.collect({ op: 'mkdir', args: [path], context: this.ctx(id, 'create directory', path), timeoutMs: METADATA_TIMEOUT_MS });
    return this.entry(out, path, id);
  }

  /** Rename a file or directory; `to` must not exist and its parent must. Returns the stat of `to`. */
  async move(caller: Caller, id: string, from: string, to: string): Promise<FileEntry> {
    if (from === '/') throw new HangarError('VALIDATION_FAILED', 'Cannot move /.', { fields: [{ field: 'from', message: 'must not be /' }] });
    if (isSameOrInside(to, from)) {
      throw new HangarError('VALIDATION_FAILED', `Cannot move ${from} to ${to}: a directory cannot move into itself.`, {
        fields: [{ field: 'to', message: 'must not be from or inside it' }],
      });
    }
    await this.runningMachine(caller, id);
    const out = await this.collect({ op: 'move', args: [from, to], context: { ...this.ctx(id, 'move', from), to }, timeoutMs: METADATA_TIMEOUT_MS });
    return this.entry(out, to, id);
  }

  /** Delete a file, a symlink (not its target) or a directory with everything in it. */
  async remove(caller: Caller, id: string, path: string): Promise<void> {
    if (path === '/') throw new HangarError('VALIDATION_FAILED', 'Cannot delete /; delete what is inside it by name.', { fields: [{ field: 'path', message: 'must not be /' }] });
    await this.runningMachine(caller, id);
    await this.collect({ op: 'remove', args: [path], context: this.ctx(id, 'delete', path), timeoutMs: METADATA_TIMEOUT_MS });
  }

  /**
   * Write a file from a stream: missing parents are created, and the file appears only
   * once every byte is on disk (a full disk, a cut-off body or a client that goes away
   * leave the old file, or none, never part of the new one). Returns the new file's stat.
   */
  async write(caller: Caller, id: string, path: string, upload: FileUpload, signal?: AbortSignal): Promise<FileEntry> {
    const m = await this.runningMachine(caller, id);
    if (path === '/') throw new HangarError('IS_A_DIRECTORY', `Cannot write /: it is a directory in machine ${id}; name a file.`, { path });
    const tmpName = `.hangar-upload-${randomBytes(8).toString('hex')}`;
    const context = { ...this.ctx(id, 'write', path), diskMb: m.config.disk_mb, volumeMountPath: volumeAt(m, path), diskFullNote: 'the file was not changed' };
    const args = [path, tmpName, upload.contentLength === undefined ? '' : String(upload.contentLength)];
    return this.upload(m, 'write', args, context, upload, signal, () => this.cleanup(id, posix.join(posix.dirname(path), tmpName)));
  }

  /** Extract a tar stream into a directory (created with its parents); returns the directory's stat. */
  async extract(caller: Caller, id: string, path: string, upload: FileUpload, signal?: AbortSignal): Promise<FileEntry> {
    const m = await this.runningMachine(caller, id);
    const context: FailureContext = {
      ...this.ctx(id, 'extract into', path),
      diskMb: m.config.disk_mb,
      volumeMountPath: volumeAt(m, path),
      diskFullNote: 'the entries extracted before the disk filled stay (unless this call created the directory, which is removed)',
      archiveInput: true,
    };
    return this.upload(m, 'extract', [path], context, upload, signal, async () => undefined);
  }

  /** Start reading a regular file; resolves with its size once the machine has opened it. */
  async read(caller: Caller, id: string, path: string, signal?: AbortSignal): Promise<FileDownload> {
    await this.runningMachine(caller, id);
    const { header, bytes, body, done } = await this.download('read', path, this.ctx(id, 'read', path), signal, (h) => /^\d+$/.test(h), Number);
    const size = Number(header);
    done.then(
      () => {
        // Fewer bytes than announced (the file shrank meanwhile): cut the response so the client sees it failed.
        if (bytes() < size) body.destroy(new Error(`${path} shrank while it was read`));
        else body.end();
      },
      (err: unknown) => body.destroy(err instanceof Error ? err : new Error(String(err))),
    );
    return { size, body };
  }

  /** Start a tar stream of a directory's contents (entries named `./…`). */
  async archive(caller: Caller, id: string, path: string, signal?: AbortSignal): Promise<Readable> {
    await this.runningMachine(caller, id);
    const { body, done } = await this.download('archive', path, this.ctx(id, 'archive', path), signal, (h) => h === 'ok');
    done.then(
      () => body.end(),
      // A tar that fails half-way (an unreadable file) cuts the response: a truncated archive must not look whole.
      (err: unknown) => body.destroy(err instanceof Error ? err : new Error(String(err))),
    );
    return body;
  }

  /**
   * Run a script whose stdout is a header line and then a body; resolves once the header
   * is there (errors before it are thrown), with the body still streaming. The caller ends
   * or destroys `body` when `done` settles.
   */
  private async download(
    op: 'read' | 'archive',
    path: string,
    context: FailureContext,
    signal: AbortSignal | undefined,
    validHeader: (header: string) => boolean,
    limitOf?: (header: string) => number,
  ): Promise<{ header: string; bytes: () => number; body: PassThrough; done: Promise<void> }> {
    const ac = new AbortController();
    const onAbort = (): void => ac.abort();
    if (signal?.aborted) ac.abort();
    else signal?.addEventListener('abort', onAbort, { once: true });
    const split = new HeaderThenBody(limitOf);
    const done = this.run({ op, args: [path], context, stdout: split.write, timeoutMs: FILE_TRANSFER_TIMEOUT_MS, signal: ac.signal }).finally(() =>
      signal?.removeEventListener('abort', onAbort),
    );
    const header = await Promise.race([split.headerSeen, done.then(() => null)]);
    if (header === null || !validHeader(header)) {
      ac.abort();
      await done.catch((err: unknown) => {
        if (header === null) throw err;
      });
      throw new HangarError('FILE_OPERATION_FAILED', `Cannot ${context.action} ${path} in machine ${context.machineId}: the machine's tools answered something unexpected.`);
    }
    return { header, bytes: () => split.bodyBytes, body: split.body, done };
  }

  /** Feed a request body to a script, capped at the machine's disk size; returns the stat line it prints. */
  private async upload(
    m: MachineRecord,
    op: 'write' | 'extract',
    args: string[],
    context: FailureContext,
    upload: FileUpload,
    signal: AbortSignal | undefined,
    afterAbort: () => Promise<void>,
  ): Promise<FileEntry> {
    const quota = m.config.disk_mb * MIB;
    if (upload.contentLength !== undefined && upload.contentLength > quota) throw tooLarge(context.path, m);
    const ac = new AbortController();
    const onAbort = (): void => ac.abort();
    if (signal?.aborted) ac.abort();
    else signal?.addEventListener('abort', onAbort, { once: true });
    let over = false;
    const limited = byteLimit(quota, () => {
      over = true;
      ac.abort();
    });
    // A body that fails or stops short must kill the script, never reach it as an end-of-file.
    const body = upload.body;
    const onBodyClose = (): void => {
      if (!(body as { complete?: boolean }).complete && !body.readableEnded) ac.abort();
    };
    const onBodyError = (): void => ac.abort();
    body.on('error', onBodyError);
    body.once('close', onBodyClose);
    limited.on('error', () => ac.abort());
    body.pipe(limited);
    try {
      const out = await this.collect({ op, args, context, stdin: limited, timeoutMs: FILE_TRANSFER_TIMEOUT_MS, signal: ac.signal });
      return this.entry(out, context.path, m.id);
    } catch (err) {
      if (ac.signal.aborted) await afterAbort();
      // A disk that filled before the body passed its size is the answer the client can act on.
      if (over && !(err instanceof HangarError && err.code === 'DISK_FULL')) throw tooLarge(context.path, m);
      throw err;
    } finally {
      signal?.removeEventListener('abort', onAbort);
      body.off('close', onBodyClose);
      body.unpipe(limited);
      // What the script did not read is drained, so the client gets the answer instead of a stalled upload.
      if (!body.readableEnded) body.resume();
    }
  }

  private ctx(machineId: string, action: string, path: string): FailureContext {
    return { machineId, action, path };
  }

  /** The caller's machine, running: destroyed or unknown is 404, any other state 409. */
  private async runningMachine(caller: Caller, id: string): Promise<MachineRecord> {
    const m = await this.o.machines.get(caller, id);
    if (!isLive(m.status)) throw machineNotFound(id);
    await this.o.machines.assertHere(m);
    if (!allows(m.status, 'command')) throw notRunning(id, m.status);
    return m;
  }

  private entry(out: Buffer, path: string, id: string): FileEntry {
    const e = parseStatLine(out.toString('utf8').split('\n')[0] ?? '', path);
    if (!e) throw new HangarError('FILE_OPERATION_FAILED', `Cannot stat ${path} in machine ${id}: the machine's stat answered something unexpected.`);
    return e;
  }

  /** Run a script and return its stdout (capped); throws the catalogue error of a failure. */
  private async collect(r: Omit<ScriptRun, 'stdout'>): Promise<Buffer> {
    const out = new CappedBuffer(r.outputLimit ?? 64 * 1024);
    await this.run({ ...r, stdout: (c) => out.push(c) });
    if (out.truncated) {
      throw new HangarError('FILE_OPERATION_FAILED', `Cannot ${r.context.action} ${r.context.path} in machine ${r.context.machineId}: the answer is too large.`);
    }
    return out.bytes();
  }

  /** Run a file script in the machine, as root, counting as activity while it runs. */
  private async run(r: ScriptRun): Promise<void> {
    const id = r.context.machineId;
    const stderr = new CappedBuffer(STDERR_LIMIT_BYTES);
    const io: ExecIo = { stdout: r.stdout ?? (() => undefined), stderr: (c) => stderr.push(c) };
    this.o.machines.touch(id);
    const keepActive = setInterval(() => this.o.machines.touch(id), ACTIVITY_EVERY_MS);
    keepActive.unref();
    try {
      const builtin = r.op !== 'archive' && r.op !== 'extract' && (await this.o.runtime.hasAgent(id));
      const result = await this.o.runtime.exec(
        id,
        {
          // The agent's builtin does what the script does, natively (agent/src/fileops.h); tar stays a script.
          argv: builtin ? [AGENT_BINARY_IN_MACHINE, 'file', r.op, ...r.args] : ['/bin/sh', '-c', FILE_SCRIPTS[r.op], 'hangar-files', ...r.args],
          cwd: '/',
          env: SCRIPT_ENV,
          uid: 0,
          gid: 0,
          stdin: r.stdin,
          timeoutMs: r.timeoutMs,
          signal: r.signal,
        },
        io,
      );
      if (result.aborted) throw new HangarError('FILE_OPERATION_FAILED', `The ${r.context.action} of ${r.context.path} was cancelled: the client went away.`);
      if (result.timedOut) {
        throw new HangarError('FILE_OPERATION_FAILED', `Cannot ${r.context.action} ${r.context.path} in machine ${id}: it took longer than ${r.timeoutMs} ms.`);
      }
      if (result.exitCode !== 0) {
        if (await this.stoppedMeanwhile(id)) throw notRunning(id, 'no longer running');
        throw scriptFailure(result.exitCode, stderr.bytes().toString('utf8'), r.context);
      }
    } catch (err) {
      if (!(err instanceof ExecStartError)) throw err;
      if (err.failure === 'not_running') throw notRunning(id, 'no longer running');
      throw new HangarError(
        'FILE_OPERATION_FAILED',
        `Machine ${id} cannot run /bin/sh (${err.message}); file operations need a shell and the usual tools (stat, cat, mv, tar) inside the machine.`,
      );
    } finally {
      clearInterval(keepActive);
      this.o.machines.touch(id);
    }
  }

  /** True when the machine's container is gone or frozen: a script killed by a pause is not the script's failure. */
  private async stoppedMeanwhile(id: string): Promise<boolean> {
    const state = await this.o.runtime.inspect(id).catch(() => null);
    return state?.status !== 'running';
  }

  /** Remove an interrupted write's temporary file (best effort: the machine may be gone). */
  private async cleanup(id: string, tmpPath: string): Promise<void> {
    await this.run({ op: 'cleanup', args: [tmpPath], context: this.ctx(id, 'clean up', tmpPath), timeoutMs: METADATA_TIMEOUT_MS }).catch(() => undefined);
  }
}

function notRunning(id: string, status: string): HangarError {
  const hint = status === 'paused' ? ' Resume it first.' : '';
  return new HangarError('STATE_CONFLICT', `Machine ${id} is ${status}; files are reachable only in a running machine.${hint}`, { status });
}

/** The mount path of the machine's volume that `path` (normalised) is on, if any. */
function volumeAt(m: MachineRecord, path: string): string | undefined {
  return m.volumes.find((v) => pathWithin(path, v.mountPath))?.mountPath;
}

function tooLarge(path: string, m: MachineRecord): HangarError {
  return new HangarError(
    'BODY_TOO_LARGE',
    `The body for ${path} is larger than machine ${m.id}'s disk (config.disk_mb is ${m.config.disk_mb}, so at most ${m.config.disk_mb * MIB} bytes); nothing was changed.`,
    { limit_bytes: m.config.disk_mb * MIB },
  );
}
