/** Which pipe a chunk of output came from. */
export type OutputStream = 'stdout' | 'stderr';

/** A piece of a process's output; `offset` counts bytes of both streams together, in arrival order. */
export interface OutputChunk {
  stream: OutputStream;
  offset: number;
  data: Buffer;
}

/** What a read from an offset found. */
export interface OutputSlice {
  chunks: OutputChunk[];
  /** Where the returned output starts: the offset asked for, or later when older output was dropped. */
  from: number;
  /** Bytes between the offset asked for and `from` that were dropped to respect the cap. */
  missed: number;
  /** The offset to ask for next. */
  next: number;
}

/** Bytes at the end of `buf` that start a UTF-8 character whose other bytes have not come yet. */
function incompleteUtf8Tail(buf: Buffer): number {
  for (let back = 1; back <= Math.min(4, buf.length); back++) {
    const b = buf[buf.length - back]!;
    if ((b & 0xc0) === 0x80) continue; // continuation byte: look further back
    const need = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
    return back < need ? back : 0;
  }
  return 0;
}

/**
 * The output of one process, kept in a bounded buffer: once more than `limit` bytes were
 * written, the oldest are dropped. Chunks end on whole UTF-8 characters (a character split
 * between two reads of the pipe is kept back until it is complete), so every chunk
 * decodes on its own.
 */
export class OutputLog {
  private readonly chunks: OutputChunk[] = [];
  private kept = 0;
  private produced = 0;
  private readonly tails: Record<OutputStream, Buffer> = { stdout: Buffer.alloc(0), stderr: Buffer.alloc(0) };
  private waiters: Array<() => void> = [];
  private ended = false;

  constructor(readonly limit: number) {}

  /** Bytes written so far, dropped ones included: the offset after the last byte. */
  get total(): number {
    return this.produced;
  }

  /** True once the process's pipes have closed: nothing more will come. */
  get done(): boolean {
    return this.ended;
  }

  /** Add output as it comes from a pipe. */
  push(stream: OutputStream, data: Buffer): void {
    const joined = this.tails[stream].length ? Buffer.concat([this.tails[stream], data]) : data;
    const cut = incompleteUtf8Tail(joined);
    this.tails[stream] = Buffer.from(joined.subarray(joined.length - cut));
    this.append(stream, joined.subarray(0, joined.length - cut));
  }

  /** No more output: keep any unfinished character as it is, and wake readers. */
  end(): void {
    for (const stream of ['stdout', 'stderr'] as const) {
      this.append(stream, this.tails[stream]);
      this.tails[stream] = Buffer.alloc(0);
    }
    this.ended = true;
    this.wake();
  }

  /** The output from `offset` on, as much as is kept (at most `maxBytes`). */
  read(offset: number, maxBytes = Infinity): OutputSlice {
    const first = this.produced - this.kept;
    const from = Math.max(offset, first);
    const chunks: OutputChunk[] = [];
    let size = 0;
    for (const c of this.chunks) {
      const end = c.offset + c.data.length;
      if (end <= from) continue;
      if (size >= maxBytes) break;
      const start = Math.max(from - c.offset, 0);
      const data = c.data.subarray(start, start + (maxBytes - size));
      chunks.push({ stream: c.stream, offset: c.offset + start, data });
      size += data.length;
    }
    return { chunks, from, missed: from - offset, next: from + size };
  }

  /** Resolves at the next output or at the end (at once if ended). */
  changed(): Promise<void> {
    if (this.ended) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private append(stream: OutputStream, data: Buffer): void {
    if (data.length === 0) return;
    // A copy: the pipe's buffer may be reused, and a large one would pin memory.
    let kept = Buffer.from(data);
    let offset = this.produced;
    this.produced += kept.length;
    if (kept.length > this.limit) {
      offset += kept.length - this.limit;
      kept = kept.subarray(kept.length - this.limit);
    }
    this.chunks.push({ stream, offset, data: kept });
    this.kept += kept.length;
    while (this.kept > this.limit) {
      const head = this.chunks[0]!;
      const over = this.kept - this.limit;
      if (head.data.length <= over) {
        this.chunks.shift();
        this.kept -= head.data.length;
      } else {
        head.data = head.data.subarray(over);
        head.offset += over;
        this.kept -= over;
      }
    }
    this.wake();
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }
}
