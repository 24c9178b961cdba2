/**
 * Which sandbox an envd request is for, and whether it may reach it: the SDK names the
 * sandbox in its `E2b-Sandbox-Id` header (with `sandboxUrl`) or in the host name
 * `49983-{id}.{domain}`, and proves access with `X-Access-Token`, the envd access token
 * the control API handed out (derived from the id under the server secret; not the
 * traffic token, which only opens the machine's ports).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import type { MachineRecord } from '../../domain/machine.js';
import { FULL_SCOPE, type Caller } from '../../domain/team.js';
import type { AuthService } from '../../service/auth-service.js';
import type { MachineService } from '../../service/machine-service.js';
import { ConnectError } from './connect-wire.js';

/** The port the SDK addresses envd on. */
export const ENVD_PORT = 49983;

/** An envd request's sandbox, the caller it acts as, and the user it names. */
export interface EnvdTarget {
  machine: MachineRecord;
  /** The machine's team, as a team key would call (only ever used for this machine). */
  caller: Caller;
  /** The user of `Authorization: Basic base64(user:)`, when sent. */
  user: string | undefined;
}

/** What resolving an envd target needs. */
export interface EnvdTargetOptions {
  machines: MachineService;
  auth: AuthService;
}

/** The sandbox id an envd request names, or null when it names none. */
export function envdSandboxId(request: Pick<FastifyRequest, 'headers'>): string | null {
  const header = request.headers['e2b-sandbox-id'];
  if (typeof header === 'string' && header !== '') return header;
  const host = request.headers.host ?? '';
  const m = /^(\d+)-([A-Za-z0-9_-]+)\./.exec(host);
  return m && Number(m[1]) === ENVD_PORT ? m[2]! : null;
}

function sameSecret(a: string, b: string): boolean {
  // Hashes first: equal lengths for the constant-time compare whatever was sent.
  const ha = createHash('sha256').update(a).digest();
  const hb = createHash('sha256').update(b).digest();
  return timingSafeEqual(ha, hb);
}

function basicUser(header: string | undefined): string | undefined {
  const m = header === undefined ? null : /^Basic\s+(\S+)$/i.exec(header);
  if (!m) return undefined;
  const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
  const user = decoded.split(':')[0] ?? '';
  return user === '' ? undefined : user;
}

/**
 * Resolve and check an envd request. A missing or wrong token is `unauthenticated`;
 * a sandbox that does not exist or is not running is `unavailable`, which the SDK
 * reports as a sandbox that was killed or timed out. A paused sandbox created with
 * `autoResume` is resumed first.
 */
export async function resolveEnvdTarget(o: EnvdTargetOptions, request: FastifyRequest): Promise<EnvdTarget> {
  const id = envdSandboxId(request);
  if (id === null) throw new ConnectError('invalid_argument', 'Name the sandbox in the E2b-Sandbox-Id header, or call 49983-{sandboxId}.{domain}.');
  const token = request.headers['x-access-token'];
  if (typeof token !== 'string' || !sameSecret(token, o.machines.envdToken(id))) {
    throw new ConnectError('unauthenticated', `Send the sandbox's envd access token (envdAccessToken of the create or connect answer) as X-Access-Token.`);
  }
  let machine = await o.machines.findForTraffic(id);
  if (machine) await o.machines.assertHere(machine);
  // E2B's lifecycle.autoResume: envd traffic to a paused sandbox resumes it (one resume shared by all callers).
  if (machine && machine.status === 'paused' && machine.autoResume) machine = await o.machines.resumeForTraffic(id);
  if (!machine || machine.status !== 'running') {
    throw new ConnectError('unavailable', `Sandbox ${id} is not running (${machine ? machine.status : 'not found'}); connect to it again to resume a paused one.`);
  }
  const team = await o.auth.getTeam(machine.teamId);
  return { machine, caller: { team, keyId: 'e2b-envd-token', user: null, scope: FULL_SCOPE }, user: basicUser(request.headers.authorization) };
}
