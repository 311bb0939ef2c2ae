/**
 * The SQL behind PostgresStore, in one place like RedisStore's Lua scripts. Values always
 * travel as bound parameters; the only text spliced into SQL is the schema name, which the
 * store validates as a plain lower-case identifier and double-quotes.
 *
 * Layout: one row per session. `data` is a jsonb object mapping each top-level key to its
 * value's JSON text as a jsonb *string*: the store hands back exactly the text it was given
 * (jsonb would otherwise renormalise numbers and refuse `\u0000`), and a write still changes
 * only its keys with jsonb operators (`||`, `-`) inside one function call. Times are epoch ms.
 * The invariant `expires_at <= absolute_expiry` holds for every row, so the expiry index alone
 * finds every dead session.
 *
 * Lock leases are measured on the server's clock (`clock_timestamp()`), so app hosts whose
 * clocks drift apart still agree on when a lease ran out.
 */

/** The schema version this code writes. A later layout bumps it and migrates in `ensureSchema`. */
export const SCHEMA_VERSION = 2

/** How many recent write ids a session remembers: far more than can be in flight for one session. */
const RECENT_WRITES = 32

/** Milliseconds since the epoch on the server's clock. */
const DB_NOW = '(extract(epoch from clock_timestamp()) * 1000)::bigint'

/** A validated schema name, quoted. */
function q (schema: string): string {
  return `"${schema}"`
}

/**
 * The DDL, idempotent. Run under a transaction-scoped advisory lock so that several processes
 * starting at once on an empty database create it once.
 */
export function ddl (schema: string): string {
  const s = q(schema)
  return `
CREATE SCHEMA IF NOT EXISTS ${s};
CREATE TABLE IF NOT EXISTS ${s}.tether_meta (name text PRIMARY KEY, version integer NOT NULL);
CREATE TABLE IF NOT EXISTS ${s}.sessions (
  id text PRIMARY KEY,
  data jsonb NOT NULL,
  created_at bigint NOT NULL,
  absolute_expiry bigint NOT NULL,
  expires_at bigint NOT NULL,
  version bigint NOT NULL,
  owner text,
  lock_seq bigint NOT NULL DEFAULT 0,
  lock_token bigint,
  lock_expires bigint,
  writes jsonb NOT NULL DEFAULT '[]'
);
-- Version 2: the results of each session's recent writes, by write id (exactly-once).
ALTER TABLE ${s}.sessions ADD COLUMN IF NOT EXISTS writes jsonb NOT NULL DEFAULT '[]';
DROP FUNCTION IF EXISTS ${s}.tether_apply(text, bigint, bigint, jsonb, text[], jsonb, bigint, bigint, bigint, boolean, text);
CREATE INDEX IF NOT EXISTS sessions_expiry ON ${s}.sessions (expires_at);
CREATE INDEX IF NOT EXISTS sessions_owner ON ${s}.sessions (owner) WHERE owner IS NOT NULL;

-- One request's change, whole or not at all, in one call: checks (exists, gone, fence),
-- counters, then jsonb merge of only the keys it names. Returns {"r": reason} or
-- {"r":"ok","v":version,"c":{key:value}}. With a write id (p_wid), the result is remembered in
-- the row's \`writes\` ([[id, result], ...], the last ${RECENT_WRITES}) by the same UPDATE, under the same
-- row lock: a repeat of an applied write id is answered from there and applies nothing.
CREATE OR REPLACE FUNCTION ${s}.tether_apply(
  p_id text, p_created bigint, p_absolute bigint, p_set jsonb, p_del text[], p_incr jsonb,
  p_ttl bigint, p_now bigint, p_fence bigint, p_owner_set boolean, p_owner text, p_wid text
) RETURNS jsonb LANGUAGE plpgsql AS $fn$
DECLARE
  seen jsonb;
  res jsonb;
  w jsonb;
  r ${s}.sessions%ROWTYPE;
  live boolean;
  deadline bigint;
  ttl bigint;
  counters jsonb := '{}';
  stored jsonb := '{}';
  pair jsonb;
  k text;
  cur text;
  n numeric;
  v bigint;
BEGIN
  SELECT * INTO r FROM ${s}.sessions WHERE id = p_id FOR UPDATE;
  live := FOUND AND r.expires_at > p_now AND r.absolute_expiry > p_now;
  IF live AND p_wid IS NOT NULL THEN
    SELECT e->1 INTO seen FROM jsonb_array_elements(r.writes) e WHERE e->>0 = p_wid LIMIT 1;
    IF seen IS NOT NULL THEN RETURN seen; END IF;
  END IF;
  IF p_created IS NOT NULL THEN
    IF live THEN RETURN '{"r":"exists"}'; END IF;
  ELSIF NOT live THEN
    RETURN '{"r":"gone"}';
  END IF;
  -- COALESCE: a released lock's NULLs must refuse, not make the whole test NULL.
  IF p_fence IS NOT NULL AND NOT COALESCE(live AND r.lock_token = p_fence AND r.lock_expires > ${DB_NOW}, false) THEN
    RETURN '{"r":"fenced"}';
  END IF;
  deadline := COALESCE(p_absolute, r.absolute_expiry);
  ttl := LEAST(p_ttl, deadline - p_now);
  IF ttl <= 0 THEN RETURN '{"r":"gone"}'; END IF;
  IF live THEN stored := r.data; END IF;
  -- Every counter is checked before anything is written; a raise rolls the call back.
  FOR pair IN SELECT value FROM jsonb_array_elements(p_incr) LOOP
    k := pair->>0;
    cur := COALESCE(counters->>k, stored->>k, '0');
    IF cur !~ '^-?[0-9]+$' THEN
      RAISE EXCEPTION USING ERRCODE = 'TT001', MESSAGE = format('increment(%L): the stored value is not an integer', k);
    END IF;
    n := cur::numeric + (pair->>1)::numeric;
    IF abs(n) > 9007199254740991 THEN
      RAISE EXCEPTION USING ERRCODE = 'TT001', MESSAGE = format('increment(%L): the result is not a safe integer', k);
    END IF;
    counters := counters || jsonb_build_object(k, n::text);
  END LOOP;
  v := CASE WHEN p_created IS NOT NULL THEN 1 ELSE r.version + 1 END;
  res := jsonb_build_object('r', 'ok', 'v', v, 'c', counters);
  w := CASE WHEN p_created IS NOT NULL THEN '[]'::jsonb ELSE r.writes END;
  IF p_wid IS NOT NULL THEN
    w := w || jsonb_build_array(jsonb_build_array(p_wid, res));
    IF jsonb_array_length(w) > ${RECENT_WRITES} THEN w := w - 0; END IF;
  END IF;
  IF p_created IS NOT NULL THEN
    IF r.id IS NOT NULL THEN
      -- A dead session under this id (we hold its row lock): start it afresh.
      UPDATE ${s}.sessions SET data = (p_set - p_del) || counters, created_at = p_created,
        absolute_expiry = p_absolute, expires_at = LEAST(p_now + ttl, deadline), version = 1,
        owner = CASE WHEN p_owner_set THEN p_owner END, lock_seq = 0, lock_token = NULL, lock_expires = NULL, writes = w
      WHERE id = p_id RETURNING version INTO v;
    ELSE
      INSERT INTO ${s}.sessions (id, data, created_at, absolute_expiry, expires_at, version, owner, writes)
      VALUES (p_id, (p_set - p_del) || counters, p_created, p_absolute, LEAST(p_now + ttl, deadline), 1, CASE WHEN p_owner_set THEN p_owner END, w)
      ON CONFLICT (id) DO NOTHING RETURNING version INTO v;
      -- A concurrent create won the insert: it is live now.
      IF v IS NULL THEN RETURN '{"r":"exists"}'; END IF;
    END IF;
  ELSE
    UPDATE ${s}.sessions SET data = ((data || p_set) - p_del) || counters, version = version + 1,
      expires_at = LEAST(p_now + ttl, deadline), owner = CASE WHEN p_owner_set THEN p_owner ELSE owner END, writes = w
    WHERE id = p_id RETURNING version INTO v;
  END IF;
  RETURN res;
END
$fn$;

-- One try at the session lock: {"t": token}, {"w": ms left on the holder's lease} or {"m": true}.
CREATE OR REPLACE FUNCTION ${s}.tether_lock(p_id text, p_lease bigint, p_now bigint)
RETURNS jsonb LANGUAGE plpgsql AS $fn$
DECLARE
  r ${s}.sessions%ROWTYPE;
  db_now bigint;
  tok bigint;
BEGIN
  SELECT * INTO r FROM ${s}.sessions WHERE id = p_id FOR UPDATE;
  IF NOT FOUND OR r.expires_at <= p_now OR r.absolute_expiry <= p_now THEN RETURN '{"m":true}'; END IF;
  db_now := ${DB_NOW};
  IF r.lock_token IS NOT NULL AND r.lock_expires > db_now THEN
    RETURN jsonb_build_object('w', r.lock_expires - db_now);
  END IF;
  UPDATE ${s}.sessions SET lock_seq = lock_seq + 1, lock_token = lock_seq + 1, lock_expires = db_now + p_lease
  WHERE id = p_id RETURNING lock_token INTO tok;
  RETURN jsonb_build_object('t', tok);
END
$fn$;

INSERT INTO ${s}.tether_meta (name, version) VALUES ('schema', ${SCHEMA_VERSION})
  ON CONFLICT (name) DO UPDATE SET version = EXCLUDED.version WHERE ${s}.tether_meta.version < EXCLUDED.version;
`
}

/** A session row as `load` returns it (bigints arrive as strings from pg). */
export interface SessionRow {
  data: Record<string, string>
  created_at: string
  absolute_expiry: string
  expires_at: string
  version: string
  refreshed_to: string | null
}

/**
 * The statements, by name. Each is prepared once per connection (pg named statements).
 *
 * @example
 * ```ts
 * const sql = statements('tether')
 * await pool.query({ name: 'tether.load', text: sql.load, values: [id, now, idleTimeout, refreshBelow] })
 * ```
 */
export function statements (schema: string) {
  const s = q(schema)
  return {
    /**
     * Params: id, now, idle timeout, refresh threshold. Reads the live row and, when less than
     * the threshold of idle TTL remains, moves the deadline forward in the same statement
     * (only forward, only while alive, so a racing destroy or refresh wins).
     */
    load: `WITH cur AS (
  SELECT data, created_at, absolute_expiry, expires_at, version FROM ${s}.sessions
  WHERE id = $1 AND expires_at > $2 AND absolute_expiry > $2
), upd AS (
  UPDATE ${s}.sessions t SET expires_at = LEAST($2 + $3, t.absolute_expiry) FROM cur
  WHERE t.id = $1 AND $4 > 0 AND cur.expires_at - $2 < $4 AND t.expires_at > $2 AND t.expires_at < LEAST($2 + $3, t.absolute_expiry)
  RETURNING t.expires_at
) SELECT cur.*, upd.expires_at AS refreshed_to FROM cur LEFT JOIN upd ON true`,
    /** Params: id, created, absolute, set (jsonb), del (text[]), incr (jsonb pairs), ttl, now, fence, owner given, owner, write id. */
    apply: `SELECT ${s}.tether_apply($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) AS res`,
    /** Params: id, channel. Wakes the lock's waiters when a held lock went with the row. */
    destroy: `WITH d AS (DELETE FROM ${s}.sessions WHERE id = $1 RETURNING lock_token)
SELECT pg_notify($2, $1) FROM d WHERE lock_token IS NOT NULL`,
    /**
     * Params: owner, now, channel. Log out everywhere through the owner index, in one
     * statement; waiters on any of those sessions' locks are woken.
     */
    destroyAll: `WITH d AS (DELETE FROM ${s}.sessions WHERE owner = $1 RETURNING id, lock_token, expires_at, absolute_expiry),
woken AS (SELECT pg_notify($3, id) FROM d WHERE lock_token IS NOT NULL)
SELECT (SELECT count(*) FROM d WHERE expires_at > $2 AND absolute_expiry > $2) AS n, (SELECT count(*) FROM woken) AS woken`,
    /** Params: id, new deadline, now. */
    touch: `UPDATE ${s}.sessions SET expires_at = LEAST($2, absolute_expiry) WHERE id = $1 AND expires_at > $3 AND absolute_expiry > $3`,
    /** Params: id, lease, now. */
    lock: `SELECT ${s}.tether_lock($1, $2, $3) AS res`,
    /** Params: id, token, lease. Only a holder whose lease is still running may renew. */
    renew: `UPDATE ${s}.sessions SET lock_expires = ${DB_NOW} + $3 WHERE id = $1 AND lock_token = $2 AND lock_expires > ${DB_NOW}`,
    /** Params: id, token, channel. A late release of a lease someone else took over changes nothing. */
    release: `WITH r AS (UPDATE ${s}.sessions SET lock_token = NULL, lock_expires = NULL WHERE id = $1 AND lock_token = $2 RETURNING id)
SELECT pg_notify($3, id) FROM r`,
    /**
     * Params: now, batch size. One bounded batch of expired rows; SKIP LOCKED so that sweepers
     * in several processes, and writers, never wait on each other.
     */
    sweep: `DELETE FROM ${s}.sessions WHERE id IN (
  SELECT id FROM ${s}.sessions WHERE expires_at <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED)`,
    /** The version of the schema on the server. */
    version: `SELECT version FROM ${s}.tether_meta WHERE name = 'schema'`
  } as const
}
