// The parts of noVNC's RFB class the console uses (the package ships no type declarations).
declare module '@novnc/novnc' {
  export interface RfbOptions {
    credentials?: { password?: string; username?: string; target?: string };
    shared?: boolean;
    wsProtocols?: string[];
  }
  export default class RFB extends EventTarget {
    constructor(target: HTMLElement, url: string, options?: RfbOptions);
    scaleViewport: boolean;
    resizeSession: boolean;
    viewOnly: boolean;
    background: string;
    focusOnClick: boolean;
    disconnect(): void;
    sendCredentials(credentials: { password?: string; username?: string }): void;
    focus(): void;
  }
}
