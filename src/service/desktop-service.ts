import { HangarError } from '../domain/errors.js';
import type { Caller } from '../domain/team.js';
import type { MachineService } from './machine-service.js';
import type { TemplateResolver } from './template-service.js';

/** Where a desktop machine's VNC server listens (the host reaches the machine's private address). */
export interface VncTarget {
  machineId: string;
  host: string;
  port: number;
}

/** Dependencies of the desktop service. */
export interface DesktopServiceOptions {
  machines: MachineService;
  templates: Pick<TemplateResolver, 'ofRecord'>;
}

/**
 * Desktop machines for the native surface: where the VNC proxy connects. The access
 * check is the machine service's (a machine of another team is a 404), so only callers
 * who may read a machine's desktop settings ever reach its VNC port.
 */
export class DesktopService {
  constructor(private readonly o: DesktopServiceOptions) {}

  /** The VNC address of a running desktop machine the caller may reach: 404, 422 NO_DESKTOP or 409 otherwise. */
  async vncTarget(caller: Caller, id: string): Promise<VncTarget> {
    const m = await this.o.machines.getHere(caller, id);
    const template = await this.o.templates.ofRecord(m);
    if (!template?.desktop) {
      throw new HangarError('NO_DESKTOP', `Machine ${id} runs template ${m.template}, which has no desktop; create a machine with template "desktop" to get one.`, { template: m.template });
    }
    if (m.status !== 'running' || m.privateIp === null) {
      const hint = m.status === 'paused' ? ' Resume it first (POST /v1/machines/' + id + '/resume).' : '';
      throw new HangarError('STATE_CONFLICT', `Machine ${id} is ${m.status}; its desktop is reachable only while it runs.${hint}`, { status: m.status });
    }
    return { machineId: m.id, host: m.privateIp, port: template.desktop.vnc_port };
  }

  /** An open desktop connection counts as activity, like an open terminal. */
  touch(id: string): void {
    this.o.machines.touch(id);
  }
}
