/**
 * PostgreSQL schema migrations, applied in order by `migrate.ts` (all pending ones in one
 * transaction, under an advisory lock). Append only: a released migration is never edited.
 *
 * Conventions, so PostgreSQL keeps the semantics SQLite has (store.conformance.ts):
 * - every text column is `COLLATE "C"`: comparisons and orders are by bytes (code points),
 *   as in SQLite, whatever the database's default collation;
 * - JSON-valued fields are `text`, not jsonb: a record round-trips exactly (key order,
 *   duplicate keys, number spelling), as in SQLite;
 * - milliseconds and byte counts are `bigint` (read back as numbers by connection.ts),
 *   flags are `boolean`.
 */
export const POSTGRES_MIGRATIONS: readonly string[] = [
  // 1: the schema the SQLite store had reached (its migrations 1 to 12), in one step.
  String.raw`
  CREATE TABLE meta (key text COLLATE "C" PRIMARY KEY, value text COLLATE "C" NOT NULL);
  CREATE TABLE teams (
    id text COLLATE "C" PRIMARY KEY,
    name text COLLATE "C" NOT NULL,
    is_admin boolean NOT NULL,
    created_at bigint NOT NULL
  );
  CREATE TABLE users (
    id text COLLATE "C" PRIMARY KEY,
    team_id text COLLATE "C" NOT NULL REFERENCES teams(id),
    email text COLLATE "C" NOT NULL,
    first_name text COLLATE "C",
    last_name text COLLATE "C",
    role text COLLATE "C" NOT NULL,
    created_at bigint NOT NULL,
    UNIQUE (team_id, email)
  );
  CREATE TABLE api_keys (
    id text COLLATE "C" PRIMARY KEY,
    team_id text COLLATE "C" NOT NULL REFERENCES teams(id),
    name text COLLATE "C" NOT NULL,
    hash text COLLATE "C" NOT NULL UNIQUE,
    created_at bigint NOT NULL,
    revoked_at bigint,
    user_id text COLLATE "C" REFERENCES users(id)
  );
  CREATE TABLE machines (
    id text COLLATE "C" PRIMARY KEY,
    team_id text COLLATE "C" NOT NULL,
    status text COLLATE "C" NOT NULL,
    template text COLLATE "C" NOT NULL,
    config text COLLATE "C" NOT NULL,
    metadata text COLLATE "C" NOT NULL,
    env text COLLATE "C" NOT NULL,
    cwd text COLLATE "C",
    ephemeral boolean NOT NULL,
    timeout_ms bigint NOT NULL,
    timeout_at bigint NOT NULL,
    timeout_action text COLLATE "C" NOT NULL,
    inactivity_timeout_ms bigint,
    auto_delete_after_ms bigint,
    created_at bigint NOT NULL,
    started_at bigint,
    last_active_at bigint,
    paused_at bigint,
    resumed_at bigint,
    destroyed_at bigint,
    snapshot_id text COLLATE "C",
    warm_pool_checkout text COLLATE "C",
    pool text COLLATE "C",
    error_reason text COLLATE "C",
    deadline_at bigint,
    private_ip text COLLATE "C",
    outbound text COLLATE "C",
    public boolean NOT NULL DEFAULT false,
    auto_resume boolean NOT NULL DEFAULT false,
    name text COLLATE "C",
    updated_at bigint,
    created_by text COLLATE "C",
    auto_snapshot_frequency text COLLATE "C",
    auto_snapshot_keep integer,
    auto_snapshot_since bigint,
    auto_snapshot_last_at bigint,
    restore_point_frequency text COLLATE "C",
    restore_point_snapshot_id text COLLATE "C",
    template_build text COLLATE "C",
    volumes text COLLATE "C",
    region text COLLATE "C"
  );
  CREATE INDEX machines_team_order ON machines (team_id, created_at DESC, id DESC);
  CREATE INDEX machines_deadline ON machines (deadline_at) WHERE deadline_at IS NOT NULL;
  CREATE INDEX machines_status ON machines (status);
  CREATE INDEX machines_pool ON machines (pool, created_at) WHERE pool IS NOT NULL;
  CREATE INDEX machines_created_by ON machines (created_by) WHERE created_by IS NOT NULL;
  CREATE INDEX machines_template_build ON machines (template_build) WHERE template_build IS NOT NULL;
  CREATE INDEX machines_with_volumes ON machines (status) WHERE volumes IS NOT NULL;
  CREATE TABLE idempotency_keys (
    team_id text COLLATE "C" NOT NULL,
    key text COLLATE "C" NOT NULL,
    request_hash text COLLATE "C" NOT NULL,
    machine_id text COLLATE "C" NOT NULL,
    created_at bigint NOT NULL,
    PRIMARY KEY (team_id, key)
  );
  CREATE INDEX idempotency_created ON idempotency_keys (created_at);
  CREATE TABLE snapshots (
    id text COLLATE "C" PRIMARY KEY,
    team_id text COLLATE "C" NOT NULL,
    machine_id text COLLATE "C" NOT NULL,
    kind text COLLATE "C" NOT NULL,
    created_at bigint NOT NULL,
    size_bytes bigint NOT NULL,
    memory boolean NOT NULL,
    template text COLLATE "C" NOT NULL,
    template_build text COLLATE "C",
    config text COLLATE "C" NOT NULL,
    env text COLLATE "C" NOT NULL,
    cwd text COLLATE "C",
    volumes text COLLATE "C"
  );
  CREATE INDEX snapshots_team_order ON snapshots (team_id, created_at DESC, id DESC);
  CREATE INDEX snapshots_machine ON snapshots (machine_id);
  CREATE TABLE warm_pools (
    name text COLLATE "C" PRIMARY KEY,
    template text COLLATE "C" NOT NULL,
    config text COLLATE "C" NOT NULL,
    size integer NOT NULL,
    hits bigint NOT NULL,
    misses bigint NOT NULL,
    last_error text COLLATE "C",
    created_at bigint NOT NULL,
    updated_at bigint NOT NULL
  );
  CREATE TABLE machine_events (
    id text COLLATE "C" PRIMARY KEY,
    team_id text COLLATE "C" NOT NULL,
    machine_id text COLLATE "C" NOT NULL,
    name text COLLATE "C" NOT NULL,
    state text COLLATE "C" NOT NULL,
    error text COLLATE "C",
    created_at bigint NOT NULL,
    started_at bigint,
    finished_at bigint
  );
  CREATE INDEX machine_events_team_order ON machine_events (team_id, created_at, id);
  CREATE INDEX machine_events_machine ON machine_events (machine_id, created_at, id);
  CREATE INDEX machine_events_unfinished ON machine_events (state) WHERE state IN ('new', 'in progress');
  CREATE TABLE machine_accessors (
    machine_id text COLLATE "C" NOT NULL,
    user_id text COLLATE "C" NOT NULL,
    created_at bigint NOT NULL,
    deleted_at bigint,
    PRIMARY KEY (machine_id, user_id)
  );
  CREATE INDEX machine_accessors_user ON machine_accessors (user_id, machine_id) WHERE deleted_at IS NULL;
  -- Server-wide templates have team_id '' (a NULL would defeat the unique version).
  CREATE TABLE template_builds (
    id text COLLATE "C" PRIMARY KEY,
    team_id text COLLATE "C" NOT NULL,
    name text COLLATE "C" NOT NULL,
    version integer NOT NULL,
    status text COLLATE "C" NOT NULL,
    spec text COLLATE "C" NOT NULL,
    result text COLLATE "C",
    error text COLLATE "C",
    created_at bigint NOT NULL,
    finished_at bigint,
    deleted_at bigint,
    UNIQUE (team_id, name, version)
  );
  CREATE TABLE volumes (
    id text COLLATE "C" PRIMARY KEY,
    team_id text COLLATE "C" NOT NULL,
    name text COLLATE "C" NOT NULL,
    size_mb integer NOT NULL,
    created_at bigint NOT NULL,
    UNIQUE (team_id, name)
  );
  CREATE INDEX volumes_team_order ON volumes (team_id, created_at DESC, id DESC);
  -- JavaScript's string order (UTF-16 code units) as a text whose byte order ("C") is the
  -- same: code points order alike except that U+E000..U+FFFF come after every character
  -- above U+FFFF in UTF-16. So each of those gets a U+10FFFF prefix, and U+10FFFF itself
  -- becomes U+10FFFF U+0001, which sorts below all of them (a prefix-free code that keeps order).
  CREATE FUNCTION hangar_utf16_order(s text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT regexp_replace(replace(s, chr(1114111), chr(1114111) || chr(1)), E'([\\uE000-\\uFFFF])', chr(1114111) || E'\\1', 'g') COLLATE "C" $$;
  `,
  // 2: team quotas (issue 14): one row per team that has any, its ceilings as JSON.
  `
  CREATE TABLE team_quotas (
    team_id text COLLATE "C" PRIMARY KEY REFERENCES teams(id),
    quotas text COLLATE "C" NOT NULL
  );
  `,
  // 3: startup scripts: a team's scripts; a machine keeps a copy of its own (JSON, null when
  // none); a startup-script event keeps its run (process id, exit code, output tail) as JSON.
  `
  CREATE TABLE startup_scripts (
    id text COLLATE "C" PRIMARY KEY,
    team_id text COLLATE "C" NOT NULL,
    name text COLLATE "C" NOT NULL,
    script text COLLATE "C" NOT NULL,
    run_once boolean NOT NULL,
    created_at bigint NOT NULL
  );
  CREATE INDEX startup_scripts_team_order ON startup_scripts (team_id, created_at DESC, id DESC);
  ALTER TABLE machines ADD COLUMN startup_script text COLLATE "C";
  ALTER TABLE machine_events ADD COLUMN startup_script text COLLATE "C";
  `,
  // 4: key scopes and expiry (issue 14): read-only keys, keys of one machine, rotation with overlap.
  `
  ALTER TABLE api_keys ADD COLUMN read_only boolean NOT NULL DEFAULT false;
  ALTER TABLE api_keys ADD COLUMN machine_id text COLLATE "C";
  ALTER TABLE api_keys ADD COLUMN expires_at bigint;
  `,
  // 5: private networks (issue 16): one row each; a machine's network is a column fixed at its create, NULL when on none.
  `
  CREATE TABLE networks (
    id text COLLATE "C" PRIMARY KEY,
    team_id text COLLATE "C" NOT NULL,
    name text COLLATE "C" NOT NULL,
    created_at bigint NOT NULL,
    UNIQUE (team_id, name)
  );
  CREATE INDEX networks_team_order ON networks (team_id, created_at DESC, id DESC);
  ALTER TABLE machines ADD COLUMN network_id text COLLATE "C";
  CREATE INDEX machines_network ON machines (network_id, status) WHERE network_id IS NOT NULL;
  `,
  // 6: isolation tiers (issue 14): 'container' (runc) or 'gvisor' (runsc); NULL in older rows is 'container'.
  `
  ALTER TABLE machines ADD COLUMN isolation text COLLATE "C";
  `,
  // 7: a key's own request rate (issue 14); NULL: the server's default.
  `
  ALTER TABLE api_keys ADD COLUMN rate_per_s double precision;
  ALTER TABLE api_keys ADD COLUMN rate_burst integer;
  `,
  // 8: hosts (issue 15): the servers sharing one store; a machine names the host that runs it (NULL: none yet).
  `
  CREATE TABLE hosts (
    id text COLLATE "C" PRIMARY KEY,
    state text COLLATE "C" NOT NULL,
    url text COLLATE "C",
    capacity_machines integer NOT NULL,
    started_at bigint NOT NULL,
    heartbeat_at bigint NOT NULL,
    down_reason text COLLATE "C"
  );
  ALTER TABLE machines ADD COLUMN host_id text COLLATE "C";
  CREATE INDEX machines_host ON machines (host_id, status);
  `,
  // 9: the host that runs a template build and holds its layers (issue 15); NULL for older rows.
  `
  ALTER TABLE template_builds ADD COLUMN host_id text COLLATE "C";
  `,
  // 10: the snapshots directory a host keeps snapshots in (issue 15): hosts with the same one read each other's.
  `
  ALTER TABLE hosts ADD COLUMN snapshot_store text COLLATE "C";
  `,
  // 11: a change of a host's state, address, capacity or snapshots directory is announced on the
  // `hangar_hosts` channel (issue 15): servers LISTEN and read the hosts at once, not at their next heartbeat.
  `
  CREATE FUNCTION hangar_hosts_changed() RETURNS trigger LANGUAGE plpgsql AS $$
  BEGIN
    PERFORM pg_notify('hangar_hosts', NEW.id);
    RETURN NULL;
  END
  $$;
  CREATE TRIGGER hosts_inserted AFTER INSERT ON hosts FOR EACH ROW EXECUTE FUNCTION hangar_hosts_changed();
  CREATE TRIGGER hosts_updated AFTER UPDATE ON hosts FOR EACH ROW
    WHEN (OLD.state IS DISTINCT FROM NEW.state OR OLD.url IS DISTINCT FROM NEW.url
      OR OLD.capacity_machines IS DISTINCT FROM NEW.capacity_machines OR OLD.snapshot_store IS DISTINCT FROM NEW.snapshot_store)
    EXECUTE FUNCTION hangar_hosts_changed();
  `,
];
