/**
 * The web console's built assets (console/, built by `npm run build` into dist/console)
 * at /console: files by path with their content types, a long cache on the hashed files
 * under assets/, and index.html for every other path so client-side routes load.
 */
import { readFile, stat } from 'node:fs/promises';
import { extname, join, normalize, sep } from 'node:path';
import type { FastifyPluginAsync } from 'fastify';
import { HangarError } from '../../domain/errors.js';
import { errorBody } from '../error-mapping.js';

/** Options of the console plugin. */
export interface ConsolePluginOptions {
  /** The built console: index.html and assets/. */
  dir: string;
}

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.woff': 'font/woff',
  '.ttf': 'font/ttf',
  '.wasm': 'application/wasm',
  '.txt': 'text/plain; charset=utf-8',
};

/**
 * The page holds an API key, so it loads nothing but its own files and talks only to this
 * server (`'self'` covers its WebSockets); xterm.js sets styles at run time, hence inline styles.
 */
const PAGE_POLICY =
  "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; font-src 'self'; " +
  "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/** Vite names every file under assets/ by its content hash: it never changes, so caches may keep it. */
const IMMUTABLE = 'public, max-age=31536000, immutable';

/** A file of the built console, or null when the path names none (or leaves the directory). */
async function builtFile(dir: string, urlPath: string): Promise<{ path: string; size: number } | null> {
  let relative: string;
  try {
    relative = decodeURIComponent(urlPath);
  } catch {
    return null;
  }
  if (relative.includes('\0')) return null;
  const path = normalize(join(dir, relative));
  if (path !== dir && !path.startsWith(dir.endsWith(sep) ? dir : dir + sep)) return null;
  const s = await stat(path).catch(() => null);
  return s?.isFile() ? { path, size: s.size } : null;
}

/** Serve the console at /console (a Fastify plugin in its own scope). */
export const consolePlugin: FastifyPluginAsync<ConsolePluginOptions> = async (scope, { dir }) => {
  const index = join(dir, 'index.html');
  const notBuilt = (): HangarError =>
    new HangarError('ROUTE_NOT_FOUND', `The web console is not built (no ${index}): run \`npm run build\`, or point HANGAR_CONSOLE_DIR at a built console.`);

  scope.get('/console', async (_request, reply) => reply.redirect('/console/', 302));
  scope.get('/console/*', async (request, reply) => {
    const rest = (request.params as { '*': string })['*'];
    reply.header('x-content-type-options', 'nosniff');
    const file = rest === '' ? null : await builtFile(dir, rest);
    if (file) {
      reply.header('content-type', CONTENT_TYPES[extname(file.path)] ?? 'application/octet-stream');
      reply.header('cache-control', rest.startsWith('assets/') ? IMMUTABLE : 'no-cache');
      return reply.send(await readFile(file.path));
    }
    // A missing hashed file is a stale page asking for an old build: a 404, not the index.
    if (rest.startsWith('assets/')) {
      const e = new HangarError('ROUTE_NOT_FOUND', `No console asset ${rest}; reload the page to get the current build.`);
      return reply.code(404).send(errorBody(e));
    }
    const html = await readFile(index).catch(() => null);
    if (!html) return reply.code(404).send(errorBody(notBuilt()));
    // Client-side routes (/console/machines/…) all load the one page, which must never be stale.
    return reply
      .header('content-type', CONTENT_TYPES['.html'])
      .header('cache-control', 'no-cache')
      .header('content-security-policy', PAGE_POLICY)
      .header('referrer-policy', 'no-referrer')
      .send(html);
  });
};
