/**
 * Schema migrations, applied in order inside one transaction each. Append only:
 * a released migration is never edited.
 */
export const SQLITE_MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
  CREATE TABLE teams (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    is_admin INTEGER NOT NULL,
    created_at INTEGER NOT NULL
  );
  CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    team_id TEXT NOT NULL REFERENCES teams(id),
    name TEXT NOT NULL,
    hash TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
  );
  CREATE TABLE machines (
    id TEXT PRIMARY KEY,
    team_id TEXT NOT NULL,
    status TEXT NOT NULL,
    template TEXT NOT NULL,
    config TEXT NOT NULL,
    metadata TEXT NOT NULL,
    env TEXT NOT NULL,
    cwd TEXT,
    ephemeral INTEGER NOT NULL,
    timeout_ms INTEGER NOT NULL,
    timeout_at INTEGER NOT NULL,
    timeout_action TEXT NOT NULL,
    inactivity_timeout_ms INTEGER,
    auto_delete_after_ms INTEGER,
    created_at INTEGER NOT NULL,
    started_at INTEGER,
    last_active_at INTEGER,
    paused_at INTEGER,
    destroyed_at INTEGER,
    snapshot_id TEXT,
    warm_pool_checkout TEXT,
    error_reason TEXT,
    deadline_at INTEGER
  );
  CREATE INDEX machines_team_order ON machines (team_id, created_at DESC, id DESC);
  CREATE INDEX machines_deadline ON machines (deadline_at) WHERE deadline_at IS NOT NULL;
  CREATE INDEX machines_status ON machines (status);
  CREATE TABLE idempotency_keys (
    team_id TEXT NOT NULL,
    key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    machine_id TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (team_id, key)
  );
  `,
  `
  ALTER TABLE machines ADD COLUMN resumed_at INTEGER;
  CREATE TABLE snapshots (
    id TEXT PRIMARY KEY,
    team_id TEXT NOT NULL,
    machine_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    size_bytes INTEGER NOT NULL,
    memory INTEGER NOT NULL,
    template TEXT NOT NULL,
    config TEXT NOT NULL,
    env TEXT NOT NULL,
    cwd TEXT
  );
  CREATE INDEX snapshots_team_order ON snapshots (team_id, created_at DESC, id DESC);
  CREATE INDEX snapshots_machine ON snapshots (machine_id);
  `,
  `
  CREATE INDEX idempotency_created ON idempotency_keys (created_at);
  `,
  `
  ALTER TABLE machines ADD COLUMN pool TEXT;
  CREATE INDEX machines_pool ON machines (pool, created_at) WHERE pool IS NOT NULL;
  CREATE TABLE warm_pools (
    name TEXT PRIMARY KEY,
    template TEXT NOT NULL,
    config TEXT NOT NULL,
    size INTEGER NOT NULL,
    hits INTEGER NOT NULL,
    misses INTEGER NOT NULL,
    last_error TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
  );
  `,
  `
  ALTER TABLE machines ADD COLUMN private_ip TEXT;
  ALTER TABLE machines ADD COLUMN outbound TEXT;
  ALTER TABLE machines ADD COLUMN public INTEGER NOT NULL DEFAULT 0;
  `,
  `
  ALTER TABLE machines ADD COLUMN name TEXT;
  ALTER TABLE machines ADD COLUMN updated_at INTEGER;
  CREATE TABLE machine_events (
    id TEXT PRIMARY KEY,
    team_id TEXT NOT NULL,
    machine_id TEXT NOT NULL,
    name TEXT NOT NULL,
    state TEXT NOT NULL,
    error TEXT,
    created_at INTEGER NOT NULL,
    started_at INTEGER,
    finished_at INTEGER
  );
  CREATE INDEX machine_events_team_order ON machine_events (team_id, created_at, id);
  CREATE INDEX machine_events_machine ON machine_events (machine_id, created_at, id);
  CREATE INDEX machine_events_unfinished ON machine_events (state) WHERE state IN ('new', 'in progress');
  `,
  `
  ALTER TABLE machines ADD COLUMN auto_resume INTEGER NOT NULL DEFAULT 0;
  `,
  `
  CREATE TABLE users (
    id TEXT PRIMARY KEY,
    team_id TEXT NOT NULL REFERENCES teams(id),
    email TEXT NOT NULL,
    first_name TEXT,
    last_name TEXT,
    role TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (team_id, email)
  );
  ALTER TABLE api_keys ADD COLUMN user_id TEXT REFERENCES users(id);
  ALTER TABLE machines ADD COLUMN created_by TEXT;
  CREATE INDEX machines_created_by ON machines (created_by) WHERE created_by IS NOT NULL;
  CREATE TABLE machine_accessors (
    machine_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    deleted_at INTEGER,
    PRIMARY KEY (machine_id, user_id)
  );
  CREATE INDEX machine_accessors_user ON machine_accessors (user_id, machine_id) WHERE deleted_at IS NULL;
  `,
  // Auto snapshots and restore points (autosnap): per-machine settings, one column each.
  `
  ALTER TABLE machines ADD COLUMN auto_snapshot_frequency TEXT;
  ALTER TABLE machines ADD COLUMN auto_snapshot_keep INTEGER;
  ALTER TABLE machines ADD COLUMN auto_snapshot_since INTEGER;
  ALTER TABLE machines ADD COLUMN auto_snapshot_last_at INTEGER;
  ALTER TABLE machines ADD COLUMN restore_point_frequency TEXT;
  ALTER TABLE machines ADD COLUMN restore_point_snapshot_id TEXT;
  `,
  // Built templates (issue 10): one row per build; a build that ended ready is a version of
  // its name. Server-wide templates have team_id ''. Machines and snapshots keep their version.
  `
  CREATE TABLE template_builds (
    id TEXT PRIMARY KEY,
    team_id TEXT NOT NULL,
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    status TEXT NOT NULL,
    spec TEXT NOT NULL,
    result TEXT,
    error TEXT,
    created_at INTEGER NOT NULL,
    finished_at INTEGER,
    deleted_at INTEGER,
    UNIQUE (team_id, name, version)
  );
  CREATE INDEX template_builds_name ON template_builds (team_id, name, version);
  ALTER TABLE machines ADD COLUMN template_build TEXT;
  ALTER TABLE snapshots ADD COLUMN template_build TEXT;
  CREATE INDEX machines_template_build ON machines (template_build) WHERE template_build IS NOT NULL;
  `,
  // Volumes: one row each; a machine's attachments are a JSON column (fixed at its create), null when none.
  `
  CREATE TABLE volumes (
    id TEXT PRIMARY KEY,
    team_id TEXT NOT NULL,
    name TEXT NOT NULL,
    size_mb INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (team_id, name)
  );
  CREATE INDEX volumes_team_order ON volumes (team_id, created_at DESC, id DESC);
  ALTER TABLE machines ADD COLUMN volumes TEXT;
  CREATE INDEX machines_with_volumes ON machines (status) WHERE volumes IS NOT NULL;
  ALTER TABLE snapshots ADD COLUMN volumes TEXT;
  `,
  // Regions (issue 16): the region a machine was created in; NULL is the server's default region.
  `
  ALTER TABLE machines ADD COLUMN region TEXT;
  `,
  // Team quotas (issue 14): one row per team that has any, its ceilings as JSON.
  `
  CREATE TABLE team_quotas (
    team_id TEXT PRIMARY KEY REFERENCES teams(id),
    quotas TEXT NOT NULL
  );
  `,
  // Startup scripts: a team's scripts; a machine keeps a copy of its own (JSON, null when none);
  // a startup-script event keeps its run (process id, exit code, output tail) as JSON.
  `
  CREATE TABLE startup_scripts (
    id TEXT PRIMARY KEY,
    team_id TEXT NOT NULL,
    name TEXT NOT NULL,
    script TEXT NOT NULL,
    run_once INTEGER NOT NULL,
    created_at INTEGER NOT NULL
  );
  CREATE INDEX startup_scripts_team_order ON startup_scripts (team_id, created_at DESC, id DESC);
  ALTER TABLE machines ADD COLUMN startup_script TEXT;
  ALTER TABLE machine_events ADD COLUMN startup_script TEXT;
  `,
  // Key scopes and expiry (issue 14): read-only keys, keys of one machine, rotation with overlap.
  `
  ALTER TABLE api_keys ADD COLUMN read_only INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE api_keys ADD COLUMN machine_id TEXT;
  ALTER TABLE api_keys ADD COLUMN expires_at INTEGER;
  `,
  // Private networks (issue 16): one row each; a machine's network is a column fixed at its create, NULL when on none.
  `
  CREATE TABLE networks (
    id TEXT PRIMARY KEY,
    team_id TEXT NOT NULL,
    name TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (team_id, name)
  );
  CREATE INDEX networks_team_order ON networks (team_id, created_at DESC, id DESC);
  ALTER TABLE machines ADD COLUMN network_id TEXT;
  CREATE INDEX machines_network ON machines (network_id, status) WHERE network_id IS NOT NULL;
  `,
  // Isolation tiers (issue 14): 'container' (runc) or 'gvisor' (runsc); NULL in older rows is 'container'.
  `
  ALTER TABLE machines ADD COLUMN isolation TEXT;
  `,
  // A key's own request rate (issue 14); NULL: the server's default.
  `
  ALTER TABLE api_keys ADD COLUMN rate_per_s REAL;
  ALTER TABLE api_keys ADD COLUMN rate_burst INTEGER;
  `,
  // Hosts (issue 15): the servers sharing one store; a machine names the host that runs it (NULL: none yet).
  `
  CREATE TABLE hosts (
    id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    url TEXT,
    capacity_machines INTEGER NOT NULL,
    started_at INTEGER NOT NULL,
    heartbeat_at INTEGER NOT NULL,
    down_reason TEXT
  );
  ALTER TABLE machines ADD COLUMN host_id TEXT;
  CREATE INDEX machines_host ON machines (host_id, status);
  `,
  // The host that runs a template build and holds its layers (issue 15); NULL for older rows.
  `
  ALTER TABLE template_builds ADD COLUMN host_id TEXT;
  `,
  // The snapshots directory a host keeps snapshots in (issue 15): hosts with the same one read each other's.
  `
  ALTER TABLE hosts ADD COLUMN snapshot_store TEXT;
  `,
];
