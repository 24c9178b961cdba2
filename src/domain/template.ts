/**
 * Built templates without I/O: what a build asks for, and the record of one build. A
 * template name's versions are its builds that ended `ready`; the newest one not deleted
 * is what a create gets, and machines keep the version they were created from.
 */
import { createHash } from 'node:crypto';
import { randomLowerAlnum } from './ids.js';

/** Names of templates (built and directory ones alike). */
export const TEMPLATE_NAME_PATTERN = /^[a-z0-9][a-z0-9._-]{0,62}$/;

/** Build ids: `bld_` + 16 lowercase letters and digits. A build that ends `ready` is a template version. */
export const newBuildId = (): string => `bld_${randomLowerAlnum(16)}`;
/** Letters of an upload id that name the host keeping it. */
const UPLOAD_HOST_TAG_LENGTH = 6;

/** The tag of a host in the ids of the uploads it keeps: 6 letters and digits from its id's hash. */
export function uploadHostTag(hostId: string): string {
  return BigInt(`0x${createHash('sha256').update(hostId).digest('hex').slice(0, 16)}`).toString(36).padStart(UPLOAD_HOST_TAG_LENGTH, '0').slice(-UPLOAD_HOST_TAG_LENGTH);
}

/**
 * Upload ids (archives sent for a build): `upl_` + 16 lowercase letters and digits. With a
 * host tag, the first 6 are it (the upload's file is on that host: a build naming it is
 * sent there) and 10 are random.
 */
export const newUploadId = (hostTag: string | null = null): string =>
  hostTag === null ? `upl_${randomLowerAlnum(16)}` : `upl_${hostTag}${randomLowerAlnum(16 - UPLOAD_HOST_TAG_LENGTH)}`;

/** The host tag an upload id carries (only meaningful for ids made with one). */
export const uploadIdHostTag = (id: string): string => id.slice(4, 4 + UPLOAD_HOST_TAG_LENGTH);
export const BUILD_ID_PATTERN = /^bld_[a-z0-9]{16}$/;
export const UPLOAD_ID_PATTERN = /^upl_[a-z0-9]{16}$/;

/** Where a build's root filesystem starts from. */
export type TemplateSource =
  /** A Debian suite made by mmdebstrap (variant `apt`), with these packages. */
  | { debian: { suite: string; packages: string[] } }
  /** An OCI image layout or docker-archive tar: uploaded (`upload_id`) or on the server (`path`, admins only). */
  | { image: { upload_id?: string; path?: string } }
  /** Another template (its current version), layered on. */
  | { template: string };

/** One step of a build, applied in order. */
export type BuildStep =
  /** Shell commands (`/bin/sh -c`) in the build machine, as the build's current user, with outbound network. */
  | { run: string }
  /** An uploaded tar extracted at `dest` (made if missing) inside the build machine. */
  | { copy: { upload_id: string; dest: string } }
  /** Variables every later step and every machine of the template gets. */
  | { env: Record<string, string> }
  /** Working directory of later steps and of the template's machines (made if missing). */
  | { workdir: string }
  /** User later steps and the template's commands run as (a name or `uid[:gid]`). */
  | { user: string };

/** What `POST /v1/templates` asks for. */
export interface TemplateBuildSpec {
  source: TemplateSource;
  steps: BuildStep[];
  description: string;
  /** Started once the steps are done; the template keeps a memory snapshot of it running. */
  startCmd: string | null;
  /** Run until it exits 0 before the snapshot is taken. */
  readyCmd: string | null;
  readyTimeoutMs: number;
  /** The whole build gives up after this long. */
  timeoutMs: number;
}

export const BUILD_LIMITS = {
  steps: 64,
  packages: 256,
  commandBytes: 64 * 1024,
  timeoutMs: { min: 1_000, max: 2 * 3_600_000, default: 30 * 60_000 },
  readyTimeoutMs: { min: 100, max: 10 * 60_000, default: 60_000 },
} as const;

/** What a finished build made: the template version machines start from. */
export interface BuiltTemplate {
  /** Layer digests, topmost first (see templates/layers.ts). */
  layers: string[];
  init: string[];
  env: Record<string, string>;
  cwd: string;
  user: string;
  /** Bytes of its own layers on disk. */
  sizeBytes: number;
  /** A live snapshot of the started service, which creates fork from; null without `start_cmd`. */
  startSnapshotId: string | null;
  /** The pid of the start command inside the machine, as the snapshot holds it. */
  startPid: number | null;
  /** Kept from a desktop template it was layered on: its machines run that desktop. */
  desktop?: { vnc_port: number; width: number; height: number; set_password?: string[] };
}

export type TemplateBuildStatus = 'building' | 'ready' | 'error';

/** One build of a template name: a version when it ended `ready`. */
export interface TemplateBuildRecord {
  id: string;
  /** The owning team; null for a server-wide template (admins build those). */
  teamId: string | null;
  name: string;
  version: number;
  status: TemplateBuildStatus;
  spec: TemplateBuildSpec;
  result: BuiltTemplate | null;
  /** Why it failed: the step (`source`, `step 3 (run)`, `start`, …) and what happened. */
  error: { step: string; message: string } | null;
  createdAt: number;
  finishedAt: number | null;
  /** When its name was deleted; a deleted version starts no more machines. */
  deletedAt: number | null;
  /** The host that runs (ran) the build and holds its layers; null for builds from before hosts existed. */
  hostId: string | null;
}
