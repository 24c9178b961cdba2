/**
 * The one catalogue of Hangar's error codes. Every error a client can see is
 * listed here with its HTTP status; domain code throws `HangarError` and only the
 * HTTP edge turns it into a response.
 */
export const ERROR_CATALOGUE = {
  VALIDATION_FAILED: { status: 400, meaning: 'A body, query or path parameter is malformed; details.fields names each one.' },
  INVALID_JSON: { status: 400, meaning: 'The request body is not valid JSON.' },
  INVALID_NEXT_TOKEN: { status: 400, meaning: 'next_token (or the Paperspace-style after) was not issued by this server for this caller and query.' },
  INVALID_ARCHIVE: { status: 400, meaning: 'The uploaded body is not a tar archive the machine can extract.' },
  MALFORMED_REQUEST: { status: 400, meaning: 'The HTTP request itself could not be parsed (request line, headers or body framing).' },
  UNAUTHORIZED: { status: 401, meaning: 'Missing, malformed or unknown API key.' },
  FORBIDDEN: { status: 403, meaning: 'The API key is valid but lacks the role this needs: a server admin key for /v1/admin, the machine creator or a team admin to change its accessors.' },
  PATH_PERMISSION_DENIED: { status: 403, meaning: 'The machine refused the file operation (permissions, or a read-only file system such as /proc).' },
  NOT_FOUND: { status: 404, meaning: 'No such resource for this caller (other teams\' resources are reported as missing).' },
  ROUTE_NOT_FOUND: { status: 404, meaning: 'No endpoint at this method and path.' },
  PATH_NOT_FOUND: { status: 404, meaning: 'No file or directory at this path inside the machine.' },
  REQUEST_TIMEOUT: { status: 408, meaning: 'The request was not received completely in time.' },
  STATE_CONFLICT: { status: 409, meaning: 'The machine is not in a state that allows this operation, or another operation on it is in progress.' },
  MACHINE_ON_OTHER_HOST: { status: 409, meaning: 'The machine runs on another host, which is stopped or down (details.host_id, details.host_state); a machine of a down host can still be deleted.' },
  IDEMPOTENCY_KEY_REUSED: { status: 409, meaning: 'The Idempotency-Key was already used with a different request body.' },
  TEMPLATE_IN_USE: { status: 409, meaning: 'The template has machines or snapshots on one of its versions; destroy them (or their snapshots) first.' },
  TEMPLATE_NAME_TAKEN: { status: 409, meaning: 'The name belongs to a server-wide template (or, for admins, to a directory template); choose another.' },
  VOLUME_IN_USE: { status: 409, meaning: 'The volume is attached read-write to another live machine (details.machine_id), or, to be deleted, to any live machine; a fork cannot share a read-write volume.' },
  VOLUME_NAME_TAKEN: { status: 409, meaning: 'The team already has a volume with this name.' },
  NETWORK_IN_USE: { status: 409, meaning: 'The private network still has live machines (details.machine_ids); destroy them before deleting it.' },
  NETWORK_NAME_TAKEN: { status: 409, meaning: 'The team already has a private network with this name.' },
  PATH_EXISTS: { status: 409, meaning: 'Something already exists at the destination path inside the machine.' },
  IS_A_DIRECTORY: { status: 409, meaning: 'The path inside the machine is a directory where a file is needed.' },
  NOT_A_DIRECTORY: { status: 409, meaning: 'The path inside the machine (or one of its parents) is not a directory where one is needed.' },
  NOT_A_REGULAR_FILE: { status: 409, meaning: 'The path inside the machine is a device, FIFO or socket, which cannot be read as a file.' },
  BODY_TOO_LARGE: { status: 413, meaning: 'The request body exceeds the size limit.' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, meaning: 'The body must be application/json (a process\'s stdin and file uploads also take application/octet-stream).' },
  FILE_OPERATION_FAILED: { status: 422, meaning: 'The file operation failed inside the machine; the message has its reason.' },
  UNKNOWN_TEMPLATE: { status: 422, meaning: 'The template does not exist on this server.' },
  UNKNOWN_UPLOAD: { status: 422, meaning: 'The upload_id names no upload of this team (uploads are kept for 24 hours); send the archive with POST /v1/uploads.' },
  UNKNOWN_VOLUME: { status: 422, meaning: 'A volume to attach does not exist for this team; list yours with GET /v1/volumes.' },
  UNKNOWN_STARTUP_SCRIPT: { status: 422, meaning: 'The startup script named at a create does not exist for this team; list yours with GET /v1/startup-scripts.' },
  UNKNOWN_NETWORK: { status: 422, meaning: 'The network_id (Paperspace: networkId) of a create names no private network of this team; list yours with GET /v1/networks.' },
  UNKNOWN_SNAPSHOT: { status: 422, meaning: 'The snapshot does not exist for this team (for a restore point: is not a snapshot of that machine).' },
  COMMAND_NOT_STARTED: { status: 422, meaning: 'A background process could not be started (no such command, cwd missing, ...); details.reason says which.' },
  NO_DESKTOP: { status: 422, meaning: 'The machine\'s template runs no desktop, so it has no VNC settings; create it from a desktop template (e.g. desktop).' },
  UNSUPPORTED_OPERATION: { status: 422, meaning: 'Well-formed but not possible on this server (e.g. hibernate without snapshots).' },
  UPGRADE_REQUIRED: { status: 426, meaning: 'The endpoint is a WebSocket; send an upgrade request.' },
  CAPACITY_EXCEEDED: { status: 429, meaning: 'The server is at its machine capacity, or a machine runs as many background processes as allowed.' },
  RATE_LIMITED: { status: 429, meaning: 'This API key sent more requests than its limit allows (its own rate_limit, else HANGAR_KEY_RATE_LIMIT); wait the seconds in Retry-After (details.retry_after_s).' },
  QUOTA_EXCEEDED: { status: 429, meaning: 'The team would hold more than an admin allows (details.quota names which: machines, vcpus, memory_mb, disk_mb, snapshot_bytes, volume_mb or templates; details.limit, used, requested).' },
  HEADERS_TOO_LARGE: { status: 431, meaning: 'The request line and headers exceed 16 KiB (a very long URL or query string counts).' },
  RUNTIME_FAILED: { status: 500, meaning: 'The container runtime failed; the machine is in error with the reason (after a failed resize the message says whether it still runs unchanged).' },
  SNAPSHOT_FAILED: { status: 500, meaning: 'A pause or snapshot failed; the machine is still running, or in error with the reason and its data kept.' },
  RESTORE_FAILED: { status: 500, meaning: 'A resume or a start from a snapshot failed; a paused machine stays paused with its snapshot intact.' },
  INTERNAL: { status: 500, meaning: 'An unexpected server error. Nothing is reported beyond this code.' },
  UPSTREAM_UNREACHABLE: { status: 502, meaning: 'Ingress: nothing answered at the machine\'s port (no listener, or it failed mid-answer).' },
  RUNTIME_UNAVAILABLE: { status: 503, meaning: 'The container runtime (or, for terminals, the pty relay) cannot be used on this host.' },
  HOST_UNREACHABLE: { status: 503, meaning: 'The machine runs on another host that did not answer the forwarded request (details.host_id); retry, or wait until the host is marked down.' },
  NOT_READY: { status: 503, meaning: 'The server is starting or shutting down.' },
  STORE_BUSY: { status: 503, meaning: 'Another process held the server\'s database locked for longer than its busy timeout (HANGAR_SQLITE_BUSY_TIMEOUT_MS, HANGAR_POSTGRES_BUSY_TIMEOUT_MS); nothing was changed. Retry.' },
  STORAGE_FULL: { status: 507, meaning: "The server's own storage (its data dir) had no room for a pause's or snapshot's images; they were removed and the machine keeps running unchanged. An operator must free space on the host." },
  DISK_FULL: { status: 507, meaning: "The machine's disk quota (config.disk_mb), or the size of the volume written to, is used up: a write or extraction needed more room." },
} as const satisfies Record<string, { status: number; meaning: string }>;

/** A stable, documented error code. */
export type ErrorCode = keyof typeof ERROR_CATALOGUE;

/** An error meant for the client: code, human sentence, optional structured details. */
export class HangarError extends Error {
  readonly code: ErrorCode;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, details?: Record<string, unknown>) {
    super(message);
    this.name = 'HangarError';
    this.code = code;
    this.details = details;
  }

  /** The HTTP status this error maps to. */
  get status(): number {
    return ERROR_CATALOGUE[this.code].status;
  }
}

/** One bad field in a request, for VALIDATION_FAILED details. */
export interface FieldProblem {
  field: string;
  message: string;
}

/** A VALIDATION_FAILED error whose message lists every problem. */
export function validationError(problems: FieldProblem[]): HangarError {
  const sentence = problems.map((p) => (p.field ? `${p.field}: ${p.message}` : p.message)).join('; ');
  return new HangarError('VALIDATION_FAILED', `Invalid request. ${sentence}`, { fields: problems });
}

/** The 404 of a volume that is missing or another team's (one message for both). */
export function volumeNotFound(id: string): HangarError {
  return new HangarError('NOT_FOUND', `Volume ${id} does not exist. Check the id, and that the API key belongs to the volume's team.`);
}

/** The 404 of a startup script that is missing or another team's (one message for both). */
export function startupScriptNotFound(id: string): HangarError {
  return new HangarError('NOT_FOUND', `Startup script ${id} does not exist. Check the id, and that the API key belongs to the script's team.`);
}

/** The 404 of a private network that is missing or another team's (one message for both). */
export function networkNotFound(id: string): HangarError {
  return new HangarError('NOT_FOUND', `Network ${id} does not exist. Check the id, and that the API key belongs to the network's team.`);
}

/** Shorthand for the 404 that hides whether another team owns the resource. */
export function machineNotFound(id: string): HangarError {
  return new HangarError('NOT_FOUND', `Machine ${id} does not exist. Check the id, and that the API key belongs to the machine's team.`);
}
