import http from 'node:http';

/** One answer as the benchmark sees it; `ms` runs from sending to the last byte received. */
export interface TimedResponse {
  status: number;
  text: string;
  ms: number;
}

/**
 * A minimal HTTP/1.1 client over node:http with a keep-alive agent: less client
 * overhead per request than fetch (undici), so the numbers are closer to the server's.
 */
export class ApiClient {
  private readonly agent: http.Agent;

  constructor(
    readonly baseUrl: string,
    private readonly apiKey: string,
    /** Connections kept open at most (1 for sequential measurements). */
    maxSockets = 1,
  ) {
    this.agent = new http.Agent({ keepAlive: true, maxSockets });
  }

  /** Send one request and time it; rejects when no byte arrives for `timeoutMs`. */
  request(method: string, path: string, body?: unknown, timeoutMs = 30_000): Promise<TimedResponse> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const headers: Record<string, string> = { authorization: `Bearer ${this.apiKey}` };
    if (payload !== undefined) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = String(Buffer.byteLength(payload));
    }
    return new Promise((resolve, reject) => {
      const started = performance.now();
      const req = http.request(`${this.baseUrl}${path}`, { method, headers, agent: this.agent, timeout: timeoutMs }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const ms = performance.now() - started;
          resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8'), ms });
        });
      });
      req.on('timeout', () => req.destroy(new Error(`${method} ${path}: nothing received for ${timeoutMs} ms`)));
      req.on('error', reject);
      req.end(payload);
    });
  }

  /** Send a request and insist on `status`; returns the parsed JSON body and the time. */
  async expect<T>(status: number, method: string, path: string, body?: unknown, timeoutMs?: number): Promise<{ body: T; ms: number; bytes: number }> {
    const res = await this.request(method, path, body, timeoutMs);
    if (res.status !== status) {
      throw new Error(`${method} ${path}: expected ${status}, got ${res.status}: ${res.text.slice(0, 300)}`);
    }
    return { body: (res.text ? JSON.parse(res.text) : undefined) as T, ms: res.ms, bytes: Buffer.byteLength(res.text) };
  }

  /** Close the kept-alive connections. */
  close(): void {
    this.agent.destroy();
  }
}
