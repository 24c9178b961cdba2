/**
 * envd's `filesystem.Filesystem` service (Stat, ListDir, MakeDir, Move, Remove, WatchDir)
 * and its `/files` download and upload, over Hangar's FileService and FileWatchService:
 * every path is resolved by the machine's own kernel, as on the native surface.
 */
import { posix } from 'node:path';
import { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import type { FastifyRequest } from 'fastify';
import { HangarError } from '../../domain/errors.js';
import { normaliseFilePath, type FileEntry } from '../../domain/file-entry.js';
import type { FileDownload, FileService } from '../../service/file-service.js';
import type { FileWatchEventType, FileWatchService } from '../../service/file-watch.js';
import { ConnectError, type ConnectStream } from './connect-wire.js';
import type { EnvdTarget } from './envd-target.js';
import { FilesQuery, ListDirRequest, MoveRequest, parseMessage, PathRequest, WatchDirRequest } from './schemas.js';
import { parseMultipart } from './multipart.js';

/** What the filesystem service of envd needs. */
export interface EnvdFilesystemOptions {
  files: FileService;
  fileWatches: FileWatchService;
}

/** A multipart upload is held in memory while it is parsed: larger files go as application/octet-stream (streamed). */
export const MULTIPART_LIMIT_BYTES = 100 * 1024 * 1024;

const FILE_TYPE: Record<string, string> = { file: 'FILE_TYPE_FILE', directory: 'FILE_TYPE_DIRECTORY', symlink: 'FILE_TYPE_SYMLINK' };
const EVENT_TYPE: Record<FileWatchEventType, string | null> = {
  create: 'EVENT_TYPE_CREATE',
  write: 'EVENT_TYPE_WRITE',
  remove: 'EVENT_TYPE_REMOVE',
  rename: 'EVENT_TYPE_RENAME',
  overflow: null,
};

function permissionString(type: string, mode: string): string {
  const bits = parseInt(mode, 8);
  const rwx = [6, 3, 0].map((shift) => ['r', 'w', 'x'].map((c, i) => ((bits >> shift) & (4 >> i) ? c : '-')).join('')).join('');
  return `${type === 'directory' ? 'd' : type === 'symlink' ? 'L' : '-'}${rwx}`;
}

/** filesystem.EntryInfo in proto3 JSON (int64 as a string). Owner and group are not known to Hangar's stat, so left empty. */
function entryInfo(e: FileEntry): Record<string, unknown> {
  return {
    name: posix.basename(e.path),
    type: FILE_TYPE[e.type] ?? 'FILE_TYPE_UNSPECIFIED',
    path: e.path,
    size: String(e.size),
    mode: parseInt(e.mode, 8),
    permissions: permissionString(e.type, e.mode),
    modifiedTime: e.mtime,
  };
}

/** The home directory relative paths resolve against, as envd does: /root for root, /home/{user} otherwise. */
function homeOf(user: string | undefined): string {
  return user === undefined || user === 'root' ? '/root' : `/home/${user}`;
}

/** An absolute, normalised path inside the machine, or `invalid_argument`. */
export function resolvePath(path: string, user: string | undefined): string {
  const absolute = path.startsWith('/') ? path : posix.join(homeOf(user), path);
  const normal = normaliseFilePath(absolute);
  if (normal === null) throw new ConnectError('invalid_argument', `Path ${JSON.stringify(path)} is not valid (NUL byte, or longer than 4096 characters).`);
  return normal;
}

/** The filesystem service of envd for one request's sandbox. */
export class EnvdFilesystemService {
  constructor(private readonly o: EnvdFilesystemOptions) {}

  /** filesystem.Filesystem/Stat. */
  async stat(t: EnvdTarget, message: unknown): Promise<unknown> {
    const path = resolvePath(parseMessage(PathRequest, message).path, t.user);
    return { entry: entryInfo(await this.o.files.stat(t.caller, t.machine.id, path)) };
  }

  /** filesystem.Filesystem/ListDir, `depth` levels deep (1: the directory's own entries). */
  async listDir(t: EnvdTarget, message: unknown): Promise<unknown> {
    const req = parseMessage(ListDirRequest, message);
    const depth = req.depth === undefined || req.depth === 0 ? 1 : req.depth;
    const root = resolvePath(req.path, t.user);
    const out: FileEntry[] = [];
    const walk = async (dir: string, level: number): Promise<void> => {
      const entries = await this.o.files.list(t.caller, t.machine.id, dir);
      for (const e of entries) {
        out.push(e);
        if (e.type === 'directory' && level < depth) await walk(e.path, level + 1);
      }
    };
    await walk(root, 1);
    return { entries: out.map(entryInfo) };
  }

  /** filesystem.Filesystem/MakeDir: `already_exists` when something is there (the SDK answers false). */
  async makeDir(t: EnvdTarget, message: unknown): Promise<unknown> {
    const path = resolvePath(parseMessage(PathRequest, message).path, t.user);
    const existing = await this.o.files.stat(t.caller, t.machine.id, path).catch((err: unknown) => {
      if (err instanceof HangarError && err.code === 'PATH_NOT_FOUND') return null;
      throw err;
    });
    if (existing) throw new ConnectError('already_exists', `${path} already exists in sandbox ${t.machine.id}.`);
    return { entry: entryInfo(await this.o.files.mkdir(t.caller, t.machine.id, path)) };
  }

  /** filesystem.Filesystem/Move. */
  async move(t: EnvdTarget, message: unknown): Promise<unknown> {
    const req = parseMessage(MoveRequest, message);
    const entry = await this.o.files.move(t.caller, t.machine.id, resolvePath(req.source, t.user), resolvePath(req.destination, t.user));
    return { entry: entryInfo(entry) };
  }

  /** filesystem.Filesystem/Remove. */
  async remove(t: EnvdTarget, message: unknown): Promise<unknown> {
    await this.o.files.remove(t.caller, t.machine.id, resolvePath(parseMessage(PathRequest, message).path, t.user));
    return {};
  }

  /** filesystem.Filesystem/WatchDir: a start message once the watch is in place, then one message per change. */
  async watchDir(t: EnvdTarget, message: unknown, stream: ConnectStream, keepaliveMs: number): Promise<void> {
    const req = parseMessage(WatchDirRequest, message);
    if (req.includeEntry) throw new ConnectError('unimplemented', 'includeEntry is not served by Hangar; stat the path named by the event instead.');
    const dir = resolvePath(req.path, t.user);
    const keepalive = setInterval(() => void stream.send({ keepalive: {} }), keepaliveMs);
    try {
      const end = await this.o.fileWatches.watch(
        t.caller,
        t.machine.id,
        dir,
        req.recursive === true,
        {
          onStarted: () => void stream.send({ start: {} }),
          onEvent: async (e) => {
            const type = EVENT_TYPE[e.type];
            if (type === null) return;
            await stream.send({ filesystem: { name: posix.relative(dir, e.path), type } });
          },
        },
        stream.closed.signal,
      );
      if (end === 'machine_stopped') throw new ConnectError('unavailable', `Sandbox ${t.machine.id} stopped running.`);
      if (end === 'directory_gone') throw new ConnectError('not_found', `${dir} was removed.`);
    } finally {
      clearInterval(keepalive);
    }
  }

  /** GET /files: the file's size and bytes (streamed). */
  async download(t: EnvdTarget, request: FastifyRequest, gone: AbortSignal): Promise<FileDownload> {
    const q = parseMessage(FilesQuery, request.query);
    if (q.path === undefined) throw new ConnectError('invalid_argument', 'Name the file to download in the path query parameter.');
    return this.o.files.read(t.caller, t.machine.id, resolvePath(q.path, q.username ?? t.user), gone);
  }

  /** POST /files: one file as application/octet-stream (streamed), or files as multipart/form-data. */
  async upload(t: EnvdTarget, request: FastifyRequest, gone: AbortSignal): Promise<unknown[]> {
    const q = parseMessage(FilesQuery, request.query);
    const user = q.username ?? t.user;
    const contentType = request.headers['content-type'] ?? '';
    const body = request.body as Readable;
    if (/^application\/octet-stream\b/i.test(contentType)) {
      if (q.path === undefined) throw new ConnectError('invalid_argument', 'Name the file to write in the path query parameter.');
      const gzip = /\bgzip\b/i.test(request.headers['content-encoding'] ?? '');
      const length = Number(request.headers['content-length']);
      const upload = gzip ? { body: body.pipe(createGunzip()) } : { body, contentLength: Number.isFinite(length) ? length : undefined };
      const entry = await this.o.files.write(t.caller, t.machine.id, resolvePath(q.path, user), upload, gone);
      return [{ path: entry.path, name: posix.basename(entry.path), type: 'file' }];
    }
    const boundary = /^multipart\/form-data;.*\bboundary="?([^";]+)"?/i.exec(contentType)?.[1];
    if (boundary === undefined) throw new ConnectError('invalid_argument', 'Send the file as application/octet-stream, or as multipart/form-data with a boundary.');
    const parts = await parseMultipart(body, boundary, MULTIPART_LIMIT_BYTES);
    const written: unknown[] = [];
    for (const part of parts) {
      const name = q.path ?? part.filename;
      if (name === undefined || name === '') throw new ConnectError('invalid_argument', 'Each part needs a file name (its path) when the path query parameter is absent.');
      const entry = await this.o.files.write(t.caller, t.machine.id, resolvePath(name, user), { body: Readable.from([part.data]), contentLength: part.data.length }, gone);
      written.push({ path: entry.path, name: posix.basename(entry.path), type: 'file' });
    }
    return written;
  }
}
