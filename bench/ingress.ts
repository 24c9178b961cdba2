/** Requests per second to a small HTTP server inside a machine: through Hangar's ingress proxy, and straight to the machine's address. */
import type { BenchInstance } from './hangar-instance.js';
import { measureWrk, type WrkPlan, type WrkResult } from './wrk.js';

export interface IngressResults {
  plan: WrkPlan;
  port: number;
  /** wrk through `/v1/machines/{id}/ports/{port}/` with the traffic token header. */
  proxied: WrkResult;
  /** wrk straight to `http://<private_ip>:<port>/` from the host (the path ingress forwards to). */
  direct: WrkResult;
}

interface MachineBody {
  id: string;
  private_ip: string;
  traffic_access_token: string;
}

const PORT = 8080;

/**
 * Start busybox httpd serving one small file in a fresh machine (through the exec API),
 * then load it with wrk twice: through the ingress proxy and directly. The machine is
 * destroyed afterwards.
 */
export async function measureIngress(inst: BenchInstance, plan: WrkPlan, signal: AbortSignal): Promise<IngressResults> {
  const created = await inst.client.expect<MachineBody>(201, 'POST', '/v1/machines', {});
  const m = created.body;
  try {
    const script = `mkdir -p /srv && echo "hello from ${m.id}" > /srv/index.html && httpd -p ${PORT} -h /srv`;
    const started = await inst.client.expect<{ exit_code: number; stderr: string }>(200, 'POST', `/v1/machines/${m.id}/exec`, { cmd: script });
    if (started.body.exit_code !== 0) throw new Error(`httpd did not start: ${started.body.stderr}`);
    const proxied = await measureWrk(inst.server.url, { 'X-Traffic-Access-Token': m.traffic_access_token }, `/v1/machines/${m.id}/ports/${PORT}/`, plan, signal);
    const direct = await measureWrk(`http://${m.private_ip}:${PORT}`, {}, '/', plan, signal);
    return { plan, port: PORT, proxied, direct };
  } finally {
    await inst.client.expect(200, 'DELETE', `/v1/machines/${m.id}`).catch(() => undefined);
  }
}
