import { StringDecoder } from 'node:string_decoder';

/**
 * Keeps the first `limit` bytes of a stream and drops the rest, noting that there was
 * more: a command's pipe is always drained, so it never blocks on a full pipe, while
 * memory stays bounded whatever it prints.
 */
export class CappedBuffer {
  private readonly chunks: Buffer[] = [];
  private size = 0;
  private cut = false;

  constructor(private readonly limit: number) {}

  /** True once a byte beyond the limit arrived (and was dropped). */
  get truncated(): boolean {
    return this.cut;
  }

  /** Keep what fits of `chunk`. */
  push(chunk: Buffer): void {
    const room = this.limit - this.size;
    if (chunk.length > room) this.cut = true;
    if (room <= 0) return;
    const kept = chunk.length > room ? chunk.subarray(0, room) : chunk;
    this.chunks.push(kept);
    this.size += kept.length;
  }

  /** The bytes kept, as they came. */
  bytes(): Buffer {
    return Buffer.concat(this.chunks);
  }

  /** The bytes kept as UTF-8 text; a character cut at the limit is dropped instead of garbled. */
  text(): string {
    const decoder = new StringDecoder('utf8');
    const text = decoder.write(this.bytes());
    return this.cut ? text : text + decoder.end();
  }
}
