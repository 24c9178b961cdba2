import type { Readable } from 'node:stream';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { HangarError } from '../../domain/errors.js';
import type { FileService, FileUpload } from '../../service/file-service.js';
import type { FileWatchService } from '../../service/file-watch.js';
import { EventStream } from '../shared/event-stream.js';
import { defineRoute, type AnyRoute } from '../route.js';
import { clientGone } from '../shared/client-gone.js';
import { ErrorSchema } from '../shared/schemas.js';
import {
  FileContentSchema,
  FileEntrySchema,
  FileListSchema,
  FilePathQuery,
  FileWatchQuery,
  FileWatchStreamSchema,
  MachineParams,
  MakeDirectoryBody,
  MoveFileBody,
  TarArchiveSchema,
} from './schemas.js';

const errors = {
  400: { description: 'Invalid path or body (VALIDATION_FAILED), or not a tar archive (INVALID_ARCHIVE).', schema: ErrorSchema },
  401: { description: 'Missing or unknown API key.', schema: ErrorSchema },
  403: { description: 'The machine refused: permissions or a read-only file system (PATH_PERMISSION_DENIED).', schema: ErrorSchema },
  404: { description: 'No such machine for this team (NOT_FOUND), or nothing at the path (PATH_NOT_FOUND).', schema: ErrorSchema },
  409: {
    description: 'The machine is not running (STATE_CONFLICT), or the path has the wrong type or exists (IS_A_DIRECTORY, NOT_A_DIRECTORY, NOT_A_REGULAR_FILE, PATH_EXISTS).',
    schema: ErrorSchema,
  },
};
const uploadErrors = {
  ...errors,
  413: { description: "The body is larger than the machine's disk (BODY_TOO_LARGE); nothing was changed.", schema: ErrorSchema },
  507: { description: "The machine's disk filled up (DISK_FULL).", schema: ErrorSchema },
};

/** The raw body of an upload and its declared length. */
function uploadOf(request: FastifyRequest): FileUpload {
  const body = (request.body as Readable | undefined) ?? request.raw;
  const header = request.headers['content-length'];
  const length = header === undefined ? undefined : Number(header);
  return { body, contentLength: length !== undefined && Number.isSafeInteger(length) ? length : undefined };
}

/** An upload that failed is answered with the connection closed: the rest of a large body is not waited for. */
async function closingOnError<T>(reply: FastifyReply, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof HangarError) reply.header('connection', 'close');
    throw err;
  }
}

const tag = 'files';

/** Files inside a running machine: read, write, stat, list, mkdir, move, delete, tar archives. */
export function fileRoutes(files: FileService, watches: FileWatchService): AnyRoute[] {
  return [
    defineRoute({
      method: 'PUT',
      url: '/v1/machines/:id/files',
      operationId: 'writeFile',
      summary: 'Write a file',
      description:
        'The body (any media type) is streamed into a new file, which then replaces `path` in one step: a failure (full disk, ' +
        'cut-off body, client gone) leaves the old file, or none. Missing parent directories are created. An existing ' +
        "file's mode is kept; a new one gets 0644. A symlink at `path` is replaced, not followed. Counts as activity.",
      tag,
      auth: 'team',
      params: MachineParams,
      query: FilePathQuery,
      streamBody: { description: 'The file content, any size up to the machine disk.', contentType: 'application/octet-stream' },
      responses: { 200: { description: "The new file's stat.", schema: FileEntrySchema }, ...uploadErrors },
      handler: ({ params, query, caller, request, reply }) =>
        closingOnError(reply, () => files.write(caller, params.id, query.path, uploadOf(request), clientGone(reply))),
    }),
    defineRoute({
      method: 'GET',
      url: '/v1/machines/:id/files',
      operationId: 'readFile',
      summary: 'Read a file',
      description: 'The bytes of a regular file (symlinks followed inside the machine), streamed, with Content-Length. Counts as activity.',
      tag,
      auth: 'team',
      params: MachineParams,
      query: FilePathQuery,
      responses: {
        200: { description: 'The file content.', contentType: 'application/octet-stream', schema: FileContentSchema },
        ...errors,
      },
      handler: async ({ params, query, caller, reply }) => {
        const file = await files.read(caller, params.id, query.path, clientGone(reply));
        reply.header('content-length', file.size).type('application/octet-stream');
        return file.body;
      },
    }),
    defineRoute({
      method: 'DELETE',
      url: '/v1/machines/:id/files',
      operationId: 'deleteFile',
      summary: 'Delete a file or directory',
      description: 'Deletes a file, a symlink (not its target) or a directory with everything in it. Answers 204.',
      tag,
      auth: 'team',
      params: MachineParams,
      query: FilePathQuery,
      status: 204,
      responses: { 204: { description: 'Deleted.' }, ...errors },
      handler: async ({ params, query, caller }) => {
        await files.remove(caller, params.id, query.path);
      },
    }),
    defineRoute({
      method: 'GET',
      url: '/v1/machines/:id/files/stat',
      operationId: 'statFile',
      summary: 'Stat a path',
      description: 'Type, size, mode and mtime of a path; a symlink is reported as a symlink.',
      tag,
      auth: 'team',
      params: MachineParams,
      query: FilePathQuery,
      responses: { 200: { description: 'The stat.', schema: FileEntrySchema }, ...errors },
      handler: ({ params, query, caller }) => files.stat(caller, params.id, query.path),
    }),
    defineRoute({
      method: 'GET',
      url: '/v1/machines/:id/files/list',
      operationId: 'listFiles',
      summary: 'List a directory',
      description: 'The entries of a directory (a symlink to a directory is followed), each with its stat, sorted by path.',
      tag,
      auth: 'team',
      params: MachineParams,
      query: FilePathQuery,
      responses: { 200: { description: 'The entries.', schema: FileListSchema }, ...errors },
      handler: async ({ params, query, caller }) => ({ path: query.path, entries: await files.list(caller, params.id, query.path) }),
    }),
    defineRoute({
      method: 'POST',
      url: '/v1/machines/:id/files/mkdir',
      operationId: 'makeDirectory',
      summary: 'Create a directory',
      description: 'Creates the directory and its missing parents (mkdir -p); an existing directory is fine.',
      tag,
      auth: 'team',
      params: MachineParams,
      body: MakeDirectoryBody,
      responses: { 200: { description: "The directory's stat.", schema: FileEntrySchema }, ...errors },
      handler: ({ params, body, caller }) => files.mkdir(caller, params.id, body.path),
    }),
    defineRoute({
      method: 'POST',
      url: '/v1/machines/:id/files/move',
      operationId: 'moveFile',
      summary: 'Move or rename a file or directory',
      description: '`to` must not exist (409 PATH_EXISTS) and its parent must (404 PATH_NOT_FOUND).',
      tag,
      auth: 'team',
      params: MachineParams,
      body: MoveFileBody,
      responses: { 200: { description: 'The stat of `to`.', schema: FileEntrySchema }, ...errors },
      handler: ({ params, body, caller }) => files.move(caller, params.id, body.from, body.to),
    }),
    defineRoute({
      method: 'GET',
      url: '/v1/machines/:id/files/archive',
      operationId: 'downloadArchive',
      summary: 'Download a directory as tar',
      description:
        "A tar stream (entries named `./…`, symlinks stored as symlinks) of a directory's contents. A failure half-way " +
        '(an unreadable file) cuts the response short, so a truncated archive never looks complete.',
      tag,
      auth: 'team',
      params: MachineParams,
      query: FilePathQuery,
      responses: { 200: { description: 'The archive.', contentType: 'application/x-tar', schema: TarArchiveSchema }, ...errors },
      handler: async ({ params, query, caller, reply }) => {
        const body = await files.archive(caller, params.id, query.path, clientGone(reply));
        reply.type('application/x-tar');
        return body;
      },
    }),
    defineRoute({
      method: 'PUT',
      url: '/v1/machines/:id/files/archive',
      operationId: 'uploadArchive',
      summary: 'Extract a tar into a directory',
      description:
        'Extracts the uploaded tar into `path` (created with its parents), as the machine\'s busybox tar does: leading `/` and ' +
        '`../` parts of entry names are stripped, owners are not restored. Existing files are replaced. On a full disk the ' +
        'entries extracted so far stay.',
      tag,
      auth: 'team',
      params: MachineParams,
      query: FilePathQuery,
      streamBody: { description: 'A tar archive.', contentType: 'application/x-tar' },
      responses: { 200: { description: "The directory's stat.", schema: FileEntrySchema }, ...uploadErrors },
      handler: ({ params, query, caller, request, reply }) =>
        closingOnError(reply, () => files.extract(caller, params.id, query.path, uploadOf(request), clientGone(reply))),
    }),
    defineRoute({
      method: 'GET',
      url: '/v1/machines/:id/files/watch',
      operationId: 'watchFiles',
      summary: 'Watch a directory for changes',
      description:
        'Answers `text/event-stream`: one event per change in the directory (and, with `recursive=true`, below it), as the ' +
        "machine's kernel reports it (inotify): `create`, `write`, `remove` or `rename` (both the old and the new name), data " +
        '`{"path"}`; `overflow` when events were dropped (list the directory again). The stream stays open until the client ' +
        'closes it; an `end` event `{"reason"}` closes it when the directory itself goes (`directory_gone`) or the machine ' +
        'stops (`machine_stopped`). Errors before the watch starts (404 PATH_NOT_FOUND, 409 NOT_A_DIRECTORY or a machine that ' +
        'is not running, 422 for a machine started before the in-machine agent) are ordinary JSON answers. A watch does not ' +
        'count as activity.',
      tag,
      auth: 'team',
      params: MachineParams,
      query: FileWatchQuery,
      responses: {
        200: { description: 'Server-sent events, one per change.', contentType: 'text/event-stream', schema: FileWatchStreamSchema },
        ...errors,
        422: { description: 'The machine has no in-machine agent to watch with (UNSUPPORTED_OPERATION).', schema: ErrorSchema },
      },
      handler: async ({ params, query, caller, reply }) => {
        let events = null as EventStream | null;
        try {
          const reason = await watches.watch(
            caller,
            params.id,
            query.path,
            query.recursive === 'true',
            {
              onStarted: () => {
                events = new EventStream(reply);
              },
              onEvent: (e) => events?.send(e.type, { path: e.path }),
            },
            clientGone(reply),
          );
          if (reason !== 'cancelled') await events?.send('end', { reason });
        } finally {
          events?.end();
        }
      },
    }),
  ];
}
