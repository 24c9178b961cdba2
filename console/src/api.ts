/**
 * The console's one door to the server: the API key of this browser tab, an SDK client
 * with it, and the few calls the SDK does not wrap (compute statistics, events, desktop
 * settings, WebSocket URLs). Everything goes to the server that served the page.
 */
import { HangarApiError, HangarClient, type Machine } from '../../sdk/src/index.js';

export { HangarApiError };
export type { Machine };

const KEY_ITEM = 'hangar.console.key';
/** Where the Paperspace-style surface lives (the server's default base path). */
const PAPERSPACE = '/paperspace/v1';

/** The signed-in key, kept for this tab only (sessionStorage: closing the tab signs out). */
export function storedKey(): string | null {
  return sessionStorage.getItem(KEY_ITEM);
}

/** Forget the key. */
export function signOut(): void {
  sessionStorage.removeItem(KEY_ITEM);
}

/** Check a key against the server (a wrong one is a 401) and keep it for this tab. */
export async function signIn(key: string): Promise<void> {
  const c = new HangarClient({ baseUrl: location.origin, apiKey: key, retries: 0 });
  await c.raw('GET', '/v1/machines?limit=1');
  sessionStorage.setItem(KEY_ITEM, key);
}

/** An SDK client with the signed-in key. */
export function api(): HangarClient {
  return new HangarClient({ baseUrl: location.origin, apiKey: storedKey() ?? '', timeoutMs: 120_000 });
}

/** A message fit for the page from any error the SDK throws. */
export function describeError(err: unknown): string {
  if (err instanceof HangarApiError) return `${err.message} (${err.code})`;
  return err instanceof Error ? err.message : String(err);
}

/** One machine's live counters from the compute listing (the same numbers `GET /compute/machines` shows). */
export interface MachineSample {
  /** Cumulative CPU time in nanoseconds. */
  cpuNs: number;
  memoryBytes: number;
  rxBytes: number;
  txBytes: number;
}

interface ComputeStats {
  CgroupStats?: {
    cpu_stats?: { cpu_usage?: { total_usage?: number } };
    memory_stats?: { usage?: { usage?: number } };
  };
  Interfaces?: { name?: string; rx_bytes?: number; tx_bytes?: number }[];
}

/** A sample of one machine's cgroup and interface counters, or null when it is not listed as running. */
export async function sampleMachine(id: string): Promise<MachineSample | null> {
  const res = await api().raw('GET', `/compute/machines?machine=${encodeURIComponent(id)}&status=running`);
  const body = (await res.json()) as { body: { results: { stats?: ComputeStats }[] } };
  const stats = body.body.results[0]?.stats;
  if (!stats) return null;
  const eth = (stats.Interfaces ?? []).filter((i) => i.name !== 'lo');
  return {
    cpuNs: stats.CgroupStats?.cpu_stats?.cpu_usage?.total_usage ?? 0,
    memoryBytes: stats.CgroupStats?.memory_stats?.usage?.usage ?? 0,
    rxBytes: eth.reduce((n, i) => n + (i.rx_bytes ?? 0), 0),
    txBytes: eth.reduce((n, i) => n + (i.tx_bytes ?? 0), 0),
  };
}

/** A recorded operation on a machine (create, start, stop, snapshot, …). */
export interface MachineEvent {
  id: string;
  name: string;
  state: string;
  error: string | null;
  dtCreated: string;
  dtFinished: string | null;
}

/** The newest events of one machine. */
export async function machineEvents(id: string): Promise<MachineEvent[]> {
  const res = await api().raw('GET', `${PAPERSPACE}/machine-events?machineId=${encodeURIComponent(id)}&limit=50`);
  return ((await res.json()) as { items: MachineEvent[] }).items;
}

/** Template names that run a desktop (VNC), from the Paperspace-style template list. */
export async function desktopTemplates(): Promise<Set<string>> {
  const res = await api().raw('GET', `${PAPERSPACE}/templates?limit=120`);
  const items = ((await res.json()) as { items: { id: string; agentType: string }[] }).items;
  return new Set(items.filter((t) => t.agentType === 'LinuxDesktop').map((t) => t.id));
}

/** A running desktop machine's VNC password (only callers who may reach the machine get it). */
export async function vncPassword(id: string): Promise<string> {
  const res = await api().raw('GET', `${PAPERSPACE}/machines/${encodeURIComponent(id)}/desktop`);
  return ((await res.json()) as { vnc: { password: string } }).vnc.password;
}

/** A WebSocket URL on this server, authenticated with the key in the query (browsers cannot set headers on one). */
export function socketUrl(path: string, query: Record<string, string | number> = {}): string {
  const url = new URL(path, location.origin);
  url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
  for (const [k, v] of Object.entries(query)) url.searchParams.set(k, String(v));
  url.searchParams.set('access_token', storedKey() ?? '');
  return url.toString();
}
