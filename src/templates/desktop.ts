import type { TemplateManifest } from './templates.js';

/** A template's desktop description: its init runs an X server and a VNC server. */
export type DesktopSpec = NonNullable<TemplateManifest['desktop']>;

/** Names of the variables a desktop template's init reads (see scripts/build-desktop-template.sh). */
export const DESKTOP_ENV = {
  password: 'HANGAR_VNC_PASSWORD',
  port: 'HANGAR_VNC_PORT',
  width: 'HANGAR_DESKTOP_WIDTH',
  height: 'HANGAR_DESKTOP_HEIGHT',
} as const;

/**
 * The environment handed to a desktop machine's init: the screen and port from the
 * manifest, and the machine's VNC password (derived by the service, never stored).
 */
export function desktopEnv(desktop: DesktopSpec, password: string): Record<string, string> {
  return {
    [DESKTOP_ENV.password]: password,
    [DESKTOP_ENV.port]: String(desktop.vnc_port),
    [DESKTOP_ENV.width]: String(desktop.width),
    [DESKTOP_ENV.height]: String(desktop.height),
  };
}
