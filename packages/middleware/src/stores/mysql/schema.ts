/**
 * The SQL behind MySqlStore (MySQL 8, MariaDB 10.11+), in one place. Values always travel as
 * bound parameters; the only text spliced into SQL is the table name, which the store validates
 * as a plain identifier and back-quotes.
 *
 * Layout: one row per session. `data` is a JSON object mapping each top-level key to its
 * value's JSON text as a JSON string, so the store returns exactly the text it was given. A
 * write merges a patch with `JSON_MERGE_PATCH` (a key set to a text, or to null to delete it),
 * so it names no JSON paths and works for any key; only counters read single keys, by path.
 * MariaDB keeps JSON as LONGTEXT with a validity check; MySQL 8 as binary JSON: the same
 * functions work on both.
 *
 * Lock leases are measured on the server's clock, so app hosts whose clocks drift apart still
 * agree on when a lease ran out.
 */

/** The schema version this code writes. A later layout bumps it and migrates. */
export const SCHEMA_VERSION = 2

/** How many recent write ids a session remembers: far more than can be in flight for one session. */
const RECENT_WRITES = 32

/** Milliseconds since the epoch on the server's clock. */
const DB_NOW = 'CAST(UNIX_TIMESTAMP(SYSDATE(3)) * 1000 AS SIGNED)'

/** The error text prefix the apply procedure signals for an increment of a non-counter. */
export const NOT_A_COUNTER = 'TETHER_NOT_A_COUNTER: '

/** The DDL, one statement per entry (procedures cannot share a multi-statement string safely). */
export function ddl (table: string): string[] {
  const t = `\`${table}\``
  const meta = `\`${table}_meta\``
  const apply = `\`${table}_apply\``
  return [
    `CREATE TABLE IF NOT EXISTS ${meta} (name VARCHAR(64) PRIMARY KEY, version INT NOT NULL) ENGINE=InnoDB`,
    `CREATE TABLE IF NOT EXISTS ${t} (
  id VARCHAR(128) CHARACTER SET ascii COLLATE ascii_bin PRIMARY KEY,
  data JSON NOT NULL,
  created_at BIGINT NOT NULL,
  absolute_expiry BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  version BIGINT NOT NULL,
  owner VARCHAR(255) NULL,
  lock_seq BIGINT NOT NULL DEFAULT 0,
  lock_token BIGINT NULL,
  lock_expires BIGINT NULL,
  writes JSON NULL,
  KEY expiry (expires_at),
  KEY owner (owner)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
    `DROP PROCEDURE IF EXISTS ${apply}`,
    // One request's change, whole or not at all, in one CALL: checks (exists, gone, fence),
    // counters, then one JSON_MERGE_PATCH of only the keys it names. With a write id, its result
    // is remembered in the row's `writes` ([[id, version, counters text], ...], the last
    // RECENT_WRITES) in the same transaction, under the same row lock: a repeat of an applied id
    // is answered from there and applies nothing. JSON_SEARCH matches LIKE patterns, so the id's
    // '%' and '_' are escaped (with '|'). READ COMMITTED, so that a
    // FOR UPDATE of an id that does not exist takes no gap lock (concurrent creates of
    // neighbouring ids would otherwise deadlock).
    `CREATE PROCEDURE ${apply}(IN p_id VARCHAR(128), IN p_created BIGINT, IN p_absolute BIGINT,
  IN p_patch LONGTEXT, IN p_incr LONGTEXT, IN p_ttl BIGINT, IN p_now BIGINT, IN p_fence BIGINT,
  IN p_owner_set TINYINT, IN p_owner VARCHAR(255), IN p_wid VARCHAR(128))
body: BEGIN
  DECLARE r_writes LONGTEXT;
  DECLARE v_hit LONGTEXT;
  DECLARE v_writes LONGTEXT;
  DECLARE v_found INT DEFAULT 0;
  DECLARE v_dup INT DEFAULT 0;
  DECLARE r_data LONGTEXT;
  DECLARE r_abs BIGINT;
  DECLARE r_exp BIGINT;
  DECLARE r_tok BIGINT;
  DECLARE r_lexp BIGINT;
  DECLARE v_live INT DEFAULT 0;
  DECLARE v_deadline BIGINT;
  DECLARE v_ttl BIGINT;
  DECLARE v_counters LONGTEXT DEFAULT '{}';
  DECLARE v_stored LONGTEXT DEFAULT '{}';
  DECLARE v_i INT DEFAULT 0;
  DECLARE v_n INT;
  DECLARE v_key LONGTEXT;
  DECLARE v_path LONGTEXT;
  DECLARE v_cur LONGTEXT;
  DECLARE v_num DECIMAL(40,0);
  DECLARE v_msg VARCHAR(255);
  DECLARE v_version BIGINT;
  DECLARE EXIT HANDLER FOR SQLEXCEPTION BEGIN ROLLBACK; RESIGNAL; END;
  SET TRANSACTION ISOLATION LEVEL READ COMMITTED;
  START TRANSACTION;
  SELECT data, absolute_expiry, expires_at, lock_token, lock_expires, writes, 1
    INTO r_data, r_abs, r_exp, r_tok, r_lexp, r_writes, v_found
    FROM ${t} WHERE id = p_id FOR UPDATE;
  SET v_live = v_found = 1 AND r_exp > p_now AND r_abs > p_now;
  IF v_live AND p_wid IS NOT NULL AND r_writes IS NOT NULL THEN
    SET v_hit = JSON_UNQUOTE(JSON_SEARCH(r_writes, 'one', REPLACE(REPLACE(REPLACE(p_wid, '|', '||'), '%', '|%'), '_', '|_'), '|', '$[*][0]'));
    IF v_hit IS NOT NULL THEN
      -- '$[i][0]' → '$[i][': the result is at [1] and [2].
      SET v_hit = LEFT(v_hit, CHAR_LENGTH(v_hit) - 2);
      ROLLBACK;
      SELECT 'ok' AS r, JSON_EXTRACT(r_writes, CONCAT(v_hit, '1]')) AS v, JSON_UNQUOTE(JSON_EXTRACT(r_writes, CONCAT(v_hit, '2]'))) AS c;
      LEAVE body;
    END IF;
  END IF;
  IF p_created IS NOT NULL THEN
    IF v_live THEN ROLLBACK; SELECT 'exists' AS r; LEAVE body; END IF;
  ELSEIF NOT v_live THEN
    ROLLBACK; SELECT 'gone' AS r; LEAVE body;
  END IF;
  -- COALESCE: a released lock's NULLs must refuse, not make the whole test NULL.
  IF p_fence IS NOT NULL AND NOT COALESCE(v_live AND r_tok = p_fence AND r_lexp > ${DB_NOW}, 0) THEN
    ROLLBACK; SELECT 'fenced' AS r; LEAVE body;
  END IF;
  SET v_deadline = COALESCE(p_absolute, r_abs);
  SET v_ttl = LEAST(p_ttl, v_deadline - p_now);
  IF v_ttl <= 0 THEN ROLLBACK; SELECT 'gone' AS r; LEAVE body; END IF;
  IF v_live THEN SET v_stored = r_data; END IF;
  -- Every counter is checked before anything is written.
  SET v_n = JSON_LENGTH(p_incr);
  WHILE v_i < v_n DO
    SET v_key = JSON_UNQUOTE(JSON_EXTRACT(p_incr, CONCAT('$[', v_i, '][0]')));
    SET v_path = CONCAT('$.', JSON_QUOTE(v_key));
    SET v_cur = COALESCE(JSON_UNQUOTE(JSON_EXTRACT(v_counters, v_path)), JSON_UNQUOTE(JSON_EXTRACT(v_stored, v_path)), '0');
    IF NOT (v_cur REGEXP '^-?[0-9]{1,16}$') THEN
      ROLLBACK;
      SET v_msg = CONCAT('${NOT_A_COUNTER}', LEFT(v_key, 100));
      SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = v_msg;
    END IF;
    SET v_num = CAST(v_cur AS DECIMAL(40,0)) + CAST(JSON_EXTRACT(p_incr, CONCAT('$[', v_i, '][1]')) AS DECIMAL(40,0));
    IF ABS(v_num) > 9007199254740991 THEN
      ROLLBACK;
      SET v_msg = CONCAT('${NOT_A_COUNTER}', LEFT(v_key, 100));
      SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = v_msg;
    END IF;
    SET v_counters = JSON_SET(v_counters, v_path, CAST(v_num AS CHAR));
    SET v_i = v_i + 1;
  END WHILE;
  IF p_created IS NOT NULL THEN
    IF v_found = 1 THEN
      -- A dead session under this id (we hold its row lock): start it afresh.
      UPDATE ${t} SET data = JSON_MERGE_PATCH(JSON_MERGE_PATCH('{}', p_patch), v_counters), created_at = p_created,
        absolute_expiry = p_absolute, expires_at = LEAST(p_now + v_ttl, v_deadline), version = 1,
        owner = IF(p_owner_set, p_owner, NULL), lock_seq = 0, lock_token = NULL, lock_expires = NULL
      WHERE id = p_id;
    ELSE
      BEGIN
        DECLARE CONTINUE HANDLER FOR 1062 SET v_dup = 1;
        INSERT INTO ${t} (id, data, created_at, absolute_expiry, expires_at, version, owner)
        VALUES (p_id, JSON_MERGE_PATCH(JSON_MERGE_PATCH('{}', p_patch), v_counters), p_created, p_absolute, LEAST(p_now + v_ttl, v_deadline), 1, IF(p_owner_set, p_owner, NULL));
      END;
      -- A concurrent create won the insert: it is live now.
      IF v_dup = 1 THEN ROLLBACK; SELECT 'exists' AS r; LEAVE body; END IF;
    END IF;
    SET v_version = 1;
  ELSE
    UPDATE ${t} SET data = JSON_MERGE_PATCH(JSON_MERGE_PATCH(data, p_patch), v_counters), version = version + 1,
      expires_at = LEAST(p_now + v_ttl, v_deadline), owner = IF(p_owner_set, p_owner, owner)
    WHERE id = p_id;
    SELECT version INTO v_version FROM ${t} WHERE id = p_id;
  END IF;
  IF p_wid IS NOT NULL THEN
    SET v_writes = JSON_ARRAY_APPEND(IF(p_created IS NULL, COALESCE(r_writes, JSON_ARRAY()), JSON_ARRAY()), '$', JSON_ARRAY(p_wid, v_version, v_counters));
    IF JSON_LENGTH(v_writes) > ${RECENT_WRITES} THEN SET v_writes = JSON_REMOVE(v_writes, '$[0]'); END IF;
    UPDATE ${t} SET writes = v_writes WHERE id = p_id;
  ELSEIF p_created IS NOT NULL AND v_found = 1 THEN
    UPDATE ${t} SET writes = NULL WHERE id = p_id;
  END IF;
  COMMIT;
  SELECT 'ok' AS r, v_version AS v, v_counters AS c;
END`,
    `INSERT INTO ${meta} (name, version) VALUES ('schema', ${SCHEMA_VERSION}) ON DUPLICATE KEY UPDATE version = GREATEST(version, VALUES(version))`
  ]
}

/**
 * Version 1 → 2: the `writes` column (exactly-once). MySQL 8 has no ADD COLUMN IF NOT EXISTS,
 * so the store runs this only when information_schema says the column is missing.
 */
export function addWritesColumn (table: string): string {
  return `ALTER TABLE \`${table}\` ADD COLUMN writes JSON NULL`
}

/** A session row as `load` returns it (BIGINTs as strings, `data` as JSON text or parsed). */
export interface SessionRow {
  data: string | Record<string, string>
  created_at: string
  absolute_expiry: string
  expires_at: string
  version: string
}

/**
 * The statements. Each is prepared once per connection (`execute`).
 *
 * @example
 * ```ts
 * const sql = statements('tether_sessions')
 * await pool.execute(sql.load, [id, now, now])
 * ```
 */
export function statements (table: string) {
  const t = `\`${table}\``
  return {
    /** Params: id, now, now. */
    load: `SELECT data, created_at, absolute_expiry, expires_at, version FROM ${t} WHERE id = ? AND expires_at > ? AND absolute_expiry > ?`,
    /** Params: new deadline, id, old deadline (only forward), now. The lazy refresh. */
    refresh: `UPDATE ${t} SET expires_at = LEAST(?, absolute_expiry) WHERE id = ? AND expires_at < ? AND expires_at > ?`,
    /** Params: id, created, absolute, patch, incr pairs, ttl, now, fence, owner given, owner, write id. */
    apply: `CALL \`${table}_apply\`(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    /** Params: owner, now, now. How many live sessions the owner has (for destroyAll's answer). */
    countOwned: `SELECT COUNT(*) AS n FROM ${t} WHERE owner = ? AND expires_at > ? AND absolute_expiry > ?`,
    /** Params: owner. Log out everywhere through the owner index. */
    destroyAll: `DELETE FROM ${t} WHERE owner = ?`,
    /** Params: id. */
    destroy: `DELETE FROM ${t} WHERE id = ?`,
    /** Params: new deadline, id, now, now. */
    touch: `UPDATE ${t} SET expires_at = LEAST(?, absolute_expiry) WHERE id = ? AND expires_at > ? AND absolute_expiry > ?`,
    /**
     * Params: lease, id, now, now. Takes the row's lease when it is free or ran out; the new
     * token comes back as the statement's insert id (LAST_INSERT_ID(expr)), in the same trip.
     */
    takeLease: `UPDATE ${t} SET lock_seq = lock_seq + 1, lock_token = LAST_INSERT_ID(lock_seq), lock_expires = ${DB_NOW} + ?
WHERE id = ? AND expires_at > ? AND absolute_expiry > ? AND (lock_token IS NULL OR lock_expires <= ${DB_NOW})`,
    /** Params: id. What a failed take found: the session and the ms left on its lease. */
    leaseLeft: `SELECT lock_expires - ${DB_NOW} AS left_ms, expires_at, absolute_expiry FROM ${t} WHERE id = ?`,
    /** Params: lease, id, token. Only a holder whose lease is still running may renew. */
    renew: `UPDATE ${t} SET lock_expires = ${DB_NOW} + ? WHERE id = ? AND lock_token = ? AND lock_expires > ${DB_NOW}`,
    /** Params: id, token. A late release of a lease someone else took over changes nothing. */
    release: `UPDATE ${t} SET lock_token = NULL, lock_expires = NULL WHERE id = ? AND lock_token = ?`,
    /** Params: now, batch size. One bounded batch of expired rows. */
    sweep: `DELETE FROM ${t} WHERE expires_at <= ? ORDER BY expires_at LIMIT ?`,
    /** Params: name, timeout (s). The server queues waiters and wakes one per release. */
    getLock: 'SELECT GET_LOCK(?, ?) AS got',
    /** Params: name. */
    releaseLock: 'SELECT RELEASE_LOCK(?) AS released',
    version: `SELECT version FROM \`${table}_meta\` WHERE name = 'schema'`
  } as const
}
