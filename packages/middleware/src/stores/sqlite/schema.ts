/**
 * The SQL behind SqliteStore, kept in one place like the Lua scripts of RedisStore. Every
 * statement is prepared once and takes its values as bound parameters; nothing user-supplied
 * is ever spliced into SQL text.
 *
 * Layout: one row per session (metadata and lock lease) and one row per top-level key, so a
 * write touches only the keys the request changed; one row per recent write id with its result,
 * so a repeated write id is answered rather than applied again. Times are epoch milliseconds. The
 * invariant `expires_at <= absolute_expiry` holds for every row, so the expiry index alone
 * finds every dead session.
 */

/** Idempotent: several processes may run it at once on a new file (the busy timeout queues them). */
export const SCHEMA = `
CREATE TABLE IF NOT EXISTS tether_sessions (
  id TEXT PRIMARY KEY,
  created_at INTEGER NOT NULL,
  absolute_expiry INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  version INTEGER NOT NULL,
  lock_seq INTEGER NOT NULL DEFAULT 0,
  lock_token INTEGER,
  lock_expires INTEGER
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS tether_sessions_expiry ON tether_sessions (expires_at);
CREATE TABLE IF NOT EXISTS tether_fields (
  sid TEXT NOT NULL,
  key TEXT NOT NULL,
  value TEXT NOT NULL,
  PRIMARY KEY (sid, key)
);
CREATE TABLE IF NOT EXISTS tether_writes (
  sid TEXT NOT NULL,
  write_id TEXT NOT NULL,
  version INTEGER NOT NULL,
  result TEXT NOT NULL,
  PRIMARY KEY (sid, write_id)
) WITHOUT ROWID;
`

/** A session row as the statements below return it. */
export interface SessionRow {
  created_at: number
  absolute_expiry: number
  expires_at: number
  version: number
  lock_seq: number
  lock_token: number | null
  lock_expires: number | null
}

export const SQL = {
  selectSession: 'SELECT created_at, absolute_expiry, expires_at, version, lock_seq, lock_token, lock_expires FROM tether_sessions WHERE id = ?',
  selectFields: 'SELECT key, value FROM tether_fields WHERE sid = ?',
  selectField: 'SELECT value FROM tether_fields WHERE sid = ? AND key = ?',
  insertSession: 'INSERT INTO tether_sessions (id, created_at, absolute_expiry, expires_at, version) VALUES (?, ?, ?, ?, 0)',
  upsertField: 'INSERT INTO tether_fields (sid, key, value) VALUES (?, ?, ?) ON CONFLICT (sid, key) DO UPDATE SET value = excluded.value',
  deleteField: 'DELETE FROM tether_fields WHERE sid = ? AND key = ?',
  deleteFields: 'DELETE FROM tether_fields WHERE sid = ?',
  deleteSession: 'DELETE FROM tether_sessions WHERE id = ? RETURNING lock_token',
  /** The result of a write this session already applied under this write id (JSON), if any. */
  selectWrite: 'SELECT result FROM tether_writes WHERE sid = ? AND write_id = ?',
  /** Params: id, write id, version, result JSON. */
  insertWrite: 'INSERT INTO tether_writes (sid, write_id, version, result) VALUES (?, ?, ?, ?)',
  /** Params: id, oldest version to keep: the write ids of the last versions are remembered. */
  pruneWrites: 'DELETE FROM tether_writes WHERE sid = ? AND version < ?',
  deleteWrites: 'DELETE FROM tether_writes WHERE sid = ?',
  /** Bump the version and set the idle deadline (already capped by the absolute one). */
  commit: 'UPDATE tether_sessions SET version = version + 1, expires_at = ? WHERE id = ? RETURNING version',
  /** Lazy refresh: only forward, only while alive, so a racing destroy or refresh wins. */
  refresh: 'UPDATE tether_sessions SET expires_at = ? WHERE id = ? AND expires_at < ? AND expires_at > ?',
  /** Params: new deadline, id, now, now. */
  touch: 'UPDATE tether_sessions SET expires_at = min(?, absolute_expiry) WHERE id = ? AND expires_at > ? AND absolute_expiry > ?',
  /** Params: lease deadline, id. The right-hand sides read the old row, so token = old seq + 1. */
  takeLock: 'UPDATE tether_sessions SET lock_seq = lock_seq + 1, lock_token = lock_seq + 1, lock_expires = ? WHERE id = ? RETURNING lock_token',
  /** Params: lease deadline, id, token, now. Only a holder whose lease is still running may renew. */
  renewLock: 'UPDATE tether_sessions SET lock_expires = ? WHERE id = ? AND lock_token = ? AND lock_expires > ?',
  /** Params: id, token. A late release of a lease someone else took over changes nothing. */
  releaseLock: 'UPDATE tether_sessions SET lock_token = NULL, lock_expires = NULL WHERE id = ? AND lock_token = ?',
  /** Params: now, batch size. */
  selectExpired: 'SELECT id FROM tether_sessions WHERE expires_at <= ? LIMIT ?'
} as const
