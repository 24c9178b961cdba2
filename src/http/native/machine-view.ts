import { validationError } from '../../domain/errors.js';
import { autoSnapshotDue, remainingMs } from '../../domain/lifecycle.js';
import { MACHINE_STATUSES, type MachineRecord, type MachineStatus } from '../../domain/machine.js';
import { isJsonObject } from '../../domain/metadata.js';
import { holdsResources } from '../../domain/machine.js';
import { networkView } from './network-view.js';
import type { ListMachinesInput } from '../../service/machine-inputs.js';
import { MASKABLE_FIELDS } from './schemas.js';
import { metadataView } from './volume-view.js';

const iso = (ms: number): string => new Date(ms).toISOString();

/** Which of the two views of the same machines to render. */
export type MachineView = 'machine' | 'sandbox';

const SANDBOX_FIELDS = new Set([
  'id', 'status', 'config', 'template', 'created_at', 'metadata', 'started_at', 'timeout_ms', 'timeout_at',
  'expires_at', 'timeout_action', 'cwd', 'snapshot_id', 'warm_pool_checkout', 'traffic_access_token',
]);

/** Options of one rendering. */
export interface RenderOptions {
  now: number;
  view: MachineView;
  /** Field mask from `fields`, or undefined for the default set. */
  fields?: readonly string[];
  /** Set to include the secret (on create, or when named in `fields`). */
  trafficToken?: string;
}

/** The API form of a machine, with the seed's presence rules. */
export function renderMachine(m: MachineRecord, o: RenderOptions): Record<string, unknown> {
  const full: Record<string, unknown> = {
    id: m.id,
    status: m.status,
    config: m.config,
    template: m.template,
    created_at: iso(m.createdAt),
    metadata: metadataView(m),
  };
  if (m.startedAt !== null) full.started_at = iso(m.startedAt);
  full.timeout_ms = m.timeoutMs;
  full.timeout_at = iso(m.timeoutAt);
  full.expires_at = full.timeout_at;
  // A destroyed machine has no time left, whatever its old deadline says.
  full.remaining_ms = m.status === 'destroyed' ? 0 : remainingMs(m, o.now);
  full.timeout_action = m.timeoutAction;
  if (m.lastActiveAt !== null) full.last_active_at = iso(m.lastActiveAt);
  full.inactivity_timeout_ms = m.inactivityTimeoutMs;
  full.auto_delete_after_ms = m.autoDeleteAfterMs;
  full.ephemeral = m.ephemeral;
  if (m.cwd !== null) full.cwd = m.cwd;
  if (m.status === 'paused' && m.snapshotId !== null) full.snapshot_id = m.snapshotId;
  if (m.warmPoolCheckout !== null) full.warm_pool_checkout = m.warmPoolCheckout;
  if (o.trafficToken !== undefined) full.traffic_access_token = o.trafficToken;
  if (m.status === 'error' && m.errorReason !== null) full.error_reason = m.errorReason;
  if (m.privateIp !== null && holdsResources(m.status)) full.private_ip = m.privateIp;
  full.network = networkView(m.outbound);
  if (m.networkId !== null) full.network_id = m.networkId;
  if (m.public) full.public = true;
  if (m.autoResume) full.auto_resume = true;
  if (m.createdBy !== null) full.created_by = m.createdBy;
  if (m.autoSnapshot !== null) {
    full.auto_snapshot = { frequency: m.autoSnapshot.frequency, keep: m.autoSnapshot.keep, next_at: iso(autoSnapshotDue(m) ?? 0) };
  }
  if (m.restorePoint !== null) full.restore_point_snapshot_id = m.restorePoint.snapshotId;
  if (m.startupScript !== null) {
    full.startup_script_id = m.startupScript.scriptId;
    full.startup_script_run_once = m.startupScript.runOnce;
  }
  full.isolation = m.isolation;

  const keep = o.fields ? new Set(o.fields) : o.view === 'sandbox' ? SANDBOX_FIELDS : null;
  if (!keep) return full;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(full)) {
    if (keep.has(k) || (!o.fields && k === 'error_reason')) out[k] = v;
  }
  return out;
}

/** Parse `fields`: every name must be maskable. */
export function parseFields(raw: string | undefined): string[] | undefined {
  if (raw === undefined) return undefined;
  const names = raw.split(',').map((s) => s.trim()).filter(Boolean);
  const bad = names.filter((n) => !(MASKABLE_FIELDS as readonly string[]).includes(n));
  if (names.length === 0 || bad.length > 0) {
    throw validationError([
      {
        field: 'query.fields',
        message: `${bad.length ? `unknown field(s) ${bad.join(', ')}` : 'is empty'}; supported fields are: ${MASKABLE_FIELDS.join(', ')}`,
      },
    ]);
  }
  return [...new Set(names)];
}

/** The list query as the seed defines it: validated, with the legacy/paginated decision. */
export interface ParsedListQuery {
  input: ListMachinesInput;
  fields: string[] | undefined;
}

/** Turn validated query strings into a list request, or throw VALIDATION_FAILED naming each bad parameter. */
export function parseListQuery(q: {
  state?: string;
  limit?: number;
  next_token?: string;
  template?: string;
  metadata?: string;
  fields?: string;
}): ParsedListQuery {
  const problems: Array<{ field: string; message: string }> = [];
  let states: MachineStatus[] | undefined;
  if (q.state !== undefined) {
    const names = q.state.split(',').map((s) => s.trim()).filter(Boolean);
    const bad = names.filter((s) => !(MACHINE_STATUSES as readonly string[]).includes(s));
    if (names.length === 0 || bad.length) {
      problems.push({
        field: 'query.state',
        message: `${bad.length ? `unknown state(s) ${bad.join(', ')}` : 'is empty'}; valid states are: ${MACHINE_STATUSES.join(', ')}`,
      });
    } else states = [...new Set(names)] as MachineStatus[];
  }
  let metadata: Record<string, unknown> | undefined;
  if (q.metadata !== undefined) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(q.metadata);
    } catch {
      problems.push({ field: 'query.metadata', message: 'must be a JSON object, e.g. {"team":"a"} (URL-encoded); it is not valid JSON' });
    }
    if (parsed !== undefined) {
      if (isJsonObject(parsed)) metadata = parsed;
      else problems.push({ field: 'query.metadata', message: 'must be a JSON object, e.g. {"team":"a"}, not an array or a scalar' });
    }
  }
  let fields: string[] | undefined;
  try {
    fields = parseFields(q.fields);
  } catch (err) {
    problems.push(...((err as { details?: { fields: typeof problems } }).details?.fields ?? []));
  }
  if (problems.length) throw validationError(problems);
  const paginated = [q.state, q.limit, q.next_token, q.template, q.metadata, q.fields].some((v) => v !== undefined);
  return {
    input: { states, template: q.template, metadata, limit: q.limit, nextToken: q.next_token, paginated },
    fields,
  };
}
