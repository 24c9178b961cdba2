import { holdsResources } from '../../domain/machine.js';
import type { NetworkView } from '../../service/network-service.js';

/** The API form of a private network (component `PrivateNetwork`). */
export function renderNetwork({ network, members }: NetworkView): Record<string, unknown> {
  return {
    id: network.id,
    name: network.name,
    created_at: new Date(network.createdAt).toISOString(),
    machine_count: members.length,
    machines: members.map((m) => ({
      machine_id: m.machineId,
      status: m.status,
      ...(m.privateIp !== null && holdsResources(m.status) ? { private_ip: m.privateIp } : {}),
    })),
  };
}
