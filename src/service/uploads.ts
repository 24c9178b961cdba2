/**
 * Archives sent for template builds (`POST /v1/uploads`): one file per upload under
 * `<data>/uploads`, with its team beside it. A build names them by id; they are removed
 * a day after they arrived (at start-up and after each build), used or not.
 */
import { createWriteStream } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { HangarError } from '../domain/errors.js';
import { newUploadId, UPLOAD_ID_PATTERN } from '../domain/template.js';

/** One stored upload. */
export interface Upload {
  id: string;
  teamId: string;
  sizeBytes: number;
  createdAt: number;
  /** The archive's file on the server. */
  path: string;
}

export const UPLOAD_TTL_MS = 24 * 3_600_000;

export class UploadStore {
  /** `hostTag`: this host's tag (`uploadHostTag`), which the ids of its uploads carry. */
  constructor(
    private readonly dir: string,
    private readonly maxBytes: number,
    private readonly hostTag: string | null = null,
    private readonly now: () => number = Date.now,
  ) {}

  /** Store a body as a new upload of the team; 413 past the size limit (nothing kept). */
  async put(teamId: string, body: Readable): Promise<Upload> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const id = newUploadId(this.hostTag);
    const path = join(this.dir, id);
    const tmp = `${path}.part`;
    let size = 0;
    const max = this.maxBytes;
    const limit = new Transform({
      transform(chunk: Buffer, _enc, done) {
        size += chunk.length;
        if (size > max) done(new HangarError('BODY_TOO_LARGE', `An upload may be at most ${Math.floor(max / 1048576)} MiB.`));
        else done(null, chunk);
      },
    });
    try {
      await pipeline(body, limit, createWriteStream(tmp, { mode: 0o600 }));
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
    const upload: Upload = { id, teamId, sizeBytes: size, createdAt: this.now(), path };
    await writeFile(`${path}.json`, JSON.stringify({ teamId, sizeBytes: size, createdAt: upload.createdAt }), { mode: 0o600 });
    await rename(tmp, path);
    return upload;
  }

  /** The team's upload of this id, or UNKNOWN_UPLOAD (another team's is missing too). */
  async get(teamId: string, id: string): Promise<Upload> {
    const missing = new HangarError('UNKNOWN_UPLOAD', `Upload ${id} does not exist for this team; send the archive with POST /v1/uploads and use the id it returns.`, {
      upload_id: id,
    });
    if (!UPLOAD_ID_PATTERN.test(id)) throw missing;
    const path = join(this.dir, id);
    const meta = await readFile(`${path}.json`, 'utf8').then((t) => JSON.parse(t) as { teamId: string; sizeBytes: number; createdAt: number }, () => null);
    if (!meta || meta.teamId !== teamId || !(await stat(path).catch(() => null))) throw missing;
    return { id, teamId, sizeBytes: meta.sizeBytes, createdAt: meta.createdAt, path };
  }

  /** Remove uploads older than a day, and parts of uploads a crash cut off. */
  async sweep(): Promise<number> {
    let removed = 0;
    for (const n of await readdir(this.dir).catch(() => [] as string[])) {
      const path = join(this.dir, n);
      if (n.endsWith('.part')) {
        await rm(path, { force: true });
        continue;
      }
      if (!UPLOAD_ID_PATTERN.test(n)) continue;
      const meta = await readFile(`${path}.json`, 'utf8').then((t) => JSON.parse(t) as { createdAt: number }, () => null);
      if (meta && this.now() - meta.createdAt < UPLOAD_TTL_MS) continue;
      await rm(path, { force: true });
      await rm(`${path}.json`, { force: true });
      removed++;
    }
    return removed;
  }
}
