/**
 * The one door the template routes use: builds, listing with signed cursors, deletion,
 * build logs and uploads, each checked against the caller's team.
 */
import type { Readable } from 'node:stream';
import { HangarError } from '../domain/errors.js';
import type { TemplateBuildRecord, TemplateBuildSpec } from '../domain/template.js';
import type { Caller } from '../domain/team.js';
import type { BuildLogs, LogEntry } from './build-log.js';
import { CursorCodec, pageCursorFormat, type PagePosition } from './cursor-codec.js';
import type { ServerSecret } from './secrets.js';
import type { TemplateBuilder } from './template-builds.js';
import type { TemplateListing, TemplateService } from './template-service.js';
import type { Upload, UploadStore } from './uploads.js';

/** A build request as the HTTP schema gives it. */
export interface BuildTemplateInput {
  name: string;
  description: string;
  source: TemplateBuildSpec['source'];
  steps: TemplateBuildSpec['steps'];
  start_cmd?: string | undefined;
  ready_cmd?: string | undefined;
  ready_timeout_ms: number;
  timeout_ms: number;
  server_wide: boolean;
}

export interface TemplateApiOptions {
  templates: TemplateService;
  builder: TemplateBuilder;
  uploads: UploadStore;
  logs: BuildLogs;
  secret: ServerSecret;
}

export class TemplateApi {
  private readonly cursors: CursorCodec<PagePosition>;
  /** The Paperspace-style listing's `after` cursors (its own purpose: native tokens are not accepted there). */
  private readonly pageCursors: CursorCodec<PagePosition>;

  constructor(private readonly o: TemplateApiOptions) {
    const format = pageCursorFormat('templates');
    this.cursors = new CursorCodec(o.secret, {
      ...format,
      param: 'next_token',
      invalid: () => new HangarError('INVALID_NEXT_TOKEN', 'next_token is not valid for this request: pass back exactly the next_token of the previous page.'),
    });
    this.pageCursors = new CursorCodec(o.secret, pageCursorFormat('paperspace-templates'));
  }

  upload(caller: Caller, body: Readable): Promise<Upload> {
    return this.o.uploads.put(caller.team.id, body);
  }

  build(caller: Caller, input: BuildTemplateInput): Promise<TemplateBuildRecord> {
    return this.o.builder.start(caller, {
      name: input.name,
      description: input.description,
      source: input.source,
      steps: input.steps,
      startCmd: input.start_cmd ?? null,
      readyCmd: input.ready_cmd ?? null,
      readyTimeoutMs: input.ready_timeout_ms,
      timeoutMs: input.timeout_ms,
      serverWide: input.server_wide,
    });
  }

  /**
   * A page of the templates the team sees, by name. `paperspace` lists for the seed-style
   * surface (its own `after` cursors), `osOnly` the server's directory templates only.
   */
  async list(
    caller: Caller,
    limit: number,
    nextToken: string | undefined,
    opts: { paperspace?: boolean; osOnly?: boolean } = {},
  ): Promise<{ items: { listing: TemplateListing; current: TemplateBuildRecord | null }[]; nextToken: string | null }> {
    const codec = opts.paperspace ? this.pageCursors : this.cursors;
    const scope = opts.osOnly ? 'os' : 'all';
    const after = nextToken === undefined ? null : codec.decode(nextToken, caller.team.id, scope)[0];
    if (typeof after === 'number') throw codec.invalid();
    const page = await this.o.templates.page(caller.team.id, after, limit, opts.osOnly ?? false);
    const items = [];
    for (const listing of page.items) {
      const current = listing.kind === 'built' ? await this.o.templates.current(listing.build) : null;
      items.push({ listing, current });
    }
    const last = page.items[page.items.length - 1];
    const lastName = last ? (last.kind === 'built' ? last.build.name : last.kind === 'directory' ? last.template.name : last.name) : null;
    return { items, nextToken: page.more && lastName !== null ? codec.encode([lastName, ''], caller.team.id, scope) : null };
  }

  get(caller: Caller, name: string): ReturnType<TemplateService['describe']> {
    return this.o.templates.describe(caller.team.id, name);
  }

  getBuild(caller: Caller, name: string, buildId: string): Promise<TemplateBuildRecord> {
    return this.o.templates.build(caller.team.id, name, buildId);
  }

  remove(caller: Caller, name: string): Promise<void> {
    return this.o.templates.remove(caller.team.id, caller.team.isAdmin, name, this.o.builder.pinned);
  }

  logText(buildId: string): Promise<string> {
    return this.o.logs.text(buildId);
  }

  follow(buildId: string, after: number, onEntry: (e: LogEntry | null) => void): Promise<() => void> {
    return this.o.logs.follow(buildId, after, onEntry);
  }
}
