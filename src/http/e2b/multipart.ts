/**
 * A small multipart/form-data reader for envd's `/files` upload (RFC 7578): the parts'
 * file names and bytes. The body is read whole (up to a limit) before it is split.
 */
import type { Readable } from 'node:stream';
import { ConnectError } from './connect-wire.js';

/** One part of a multipart body. */
export interface MultipartPart {
  /** The form field's name. */
  name: string | undefined;
  /** The `filename` parameter, as sent (envd's SDK puts the file's path there). */
  filename: string | undefined;
  data: Buffer;
}

/** Browsers and undici escape `"`, CR and LF in file names (the WHATWG form encoding). */
function unescapeName(s: string): string {
  return s.replace(/%22/g, '"').replace(/%0D/gi, '\r').replace(/%0A/gi, '\n');
}

function param(disposition: string, key: string): string | undefined {
  const m = new RegExp(`;\\s*${key}="((?:[^"\\\\]|\\\\.)*)"`, 'i').exec(disposition) ?? new RegExp(`;\\s*${key}=([^;\\s]+)`, 'i').exec(disposition);
  return m ? unescapeName(m[1]!) : undefined;
}

/** Read and split a multipart body; more than `limit` bytes, or a malformed body, is refused. */
export async function parseMultipart(body: Readable, boundary: string, limit: number): Promise<MultipartPart[]> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    const b = chunk as Buffer;
    size += b.length;
    if (size > limit) throw new ConnectError('resource_exhausted', `A multipart upload may hold at most ${limit} bytes; send larger files as application/octet-stream (useOctetStream: true).`);
    chunks.push(b);
  }
  const all = Buffer.concat(chunks);
  const delimiter = Buffer.from(`--${boundary}`);
  const parts: MultipartPart[] = [];
  let at = all.indexOf(delimiter);
  if (at < 0) throw new ConnectError('invalid_argument', 'The multipart body has no part with its boundary.');
  for (;;) {
    at += delimiter.length;
    // `--` after a delimiter ends the body.
    if (all[at] === 0x2d && all[at + 1] === 0x2d) break;
    const headersEnd = all.indexOf('\r\n\r\n', at);
    if (headersEnd < 0) throw new ConnectError('invalid_argument', 'A multipart part has no end of headers.');
    const headers = all.subarray(at, headersEnd).toString('utf8');
    const next = all.indexOf(Buffer.from(`\r\n--${boundary}`), headersEnd + 4);
    if (next < 0) throw new ConnectError('invalid_argument', 'A multipart part is not closed by its boundary.');
    const disposition = /^content-disposition:(.*)$/im.exec(headers)?.[1] ?? '';
    parts.push({ name: param(disposition, 'name'), filename: param(disposition, 'filename'), data: all.subarray(headersEnd + 4, next) });
    at = next + 2;
  }
  return parts;
}
