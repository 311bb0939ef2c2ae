/**
 * The one error registry of `@tether/middleware`.
 *
 * Every error a user can see has a stable `code` (part of the public API: renaming one is a
 * breaking change), the HTTP `status` the adapters answer with, a `message` that says what
 * happened and a `fix` that says what to do. `docs/errors.md` lists the same table, checked by
 * `test/errors.test.ts`. `instanceof TetherError` works across duplicate installs of the
 * package because the check uses a `Symbol.for` marker rather than the class identity (as
 * undici does).
 */

const kTetherError = Symbol.for('tether.middleware.error')

/**
 * What the registry knows about one code.
 *
 * @example
 * ```ts
 * const def: ErrorDefinition = errorCodes.TETHER_ERR_STORE_UNAVAILABLE // { status: 503, message: …, fix: … }
 * ```
 */
export interface ErrorDefinition {
  /** The HTTP status the adapters answer with (every middleware error answers a request or fails start-up). */
  readonly status: number | undefined
  /** What happened. */
  readonly message: string
  /** What to do about it. */
  readonly fix: string
}

/**
 * Every code, its HTTP status, what it means and what to do. Adding a code here (and its row
 * in docs/errors.md) is the whole job of adding one. Text may hold Markdown code spans: the
 * docs table carries the same words.
 */
const registry = {
  TETHER_ERR_INVALID_OPTION: {
    status: 500,
    message: 'An option passed at start-up is missing or has the wrong type or range; the message names the option.',
    fix: 'Fix the option; the app does not start until then.'
  },
  TETHER_ERR_SECRET_TOO_SHORT: {
    status: 500,
    message: 'A cookie secret is shorter than 32 characters; refused at start-up.',
    fix: 'Use a long random secret: `node -e "console.log(require(\'crypto\').randomBytes(32).toString(\'base64url\'))"`.'
  },
  TETHER_ERR_STORE_UNAVAILABLE: {
    status: 503,
    message: 'The session store is down, unreachable or timed out, and the operation that failed changed nothing: it never reached the store, the store refused it, or it is one that is safe to repeat (a load, destroy, touch or lock). A write that was sent and then got no answer is `TETHER_ERR_STORE_OUTCOME_UNKNOWN` instead. The request never continues with an empty session.',
    fix: 'Retry later. Requests succeed again as soon as the store is back; no restart needed.'
  },
  TETHER_ERR_STORE_OUTCOME_UNKNOWN: {
    status: 503,
    message: "A session write was sent to the store but no answer came (a timeout, or the connection dropped): it may have been applied. Stores that apply a write id at most once (Memory, Redis, SQLite, PostgreSQL, MySQL, memcached) are asked again under the same id when the first try failed early, within one write timeout for both tries; either way the write is applied at most once. The request's changes are not written again at the end of the request.",
    fix: 'Reload the session before repeating the request: a repeat is a new write, so one that only sets values is safe to repeat, but an increment may count twice. Check the store if this persists.'
  },
  TETHER_ERR_STORE_CONFLICT: {
    status: 503,
    message: 'A compare-and-swap store (MemcachedStore) met another writer on every one of its `casRetries` tries; nothing of the change was written.',
    fix: 'Retry the request. If it recurs, one session takes writes from very many processes at once: raise `casRetries`, or use lock mode for that route.'
  },
  TETHER_ERR_WRITE_UNCONFIRMED: {
    status: 503,
    message: 'With `waitForReplicas`: the session write is applied on the Redis primary, but fewer replicas than asked confirmed it within the timeout, so a failover now could lose it. The request is not reported as a success.',
    fix: 'Retry (a retried write is applied again: increments count twice). If it recurs, check the replicas and the replication link, or raise the timeout.'
  },
  TETHER_ERR_STORE_CORRUPT: {
    status: 500,
    message: 'The store returned session data that is not valid JSON or not a record Tether wrote.',
    fix: 'Inspect the key named in the message.'
  },
  TETHER_ERR_SESSION_UNSERIALIZABLE: {
    status: 500,
    message: "A session value cannot be stored as JSON: a circular structure, a BigInt, a function or a symbol. Raised at save time; nothing of the request's change was written.",
    fix: 'Store plain JSON data (convert a BigInt to a string; a Date becomes an ISO string).'
  },
  TETHER_ERR_RESERVED_KEY: {
    status: 500,
    message: 'A data key collides with a session method or property (`id`, `isNew`, `cookie`, `get`, `set`, `increment`, `regenerate`, `destroy`, `save`, `reload`, `touch`, `lock`, `toJSON`, `then`), is a symbol, or starts with a NUL character.',
    fix: 'Use another key name, or `session.get()` and `session.set()` for odd names.'
  },
  TETHER_ERR_NOT_A_COUNTER: {
    status: 500,
    message: '`increment()` was used on a value that is not a safe integer, with a step that is not one, or its result would leave the safe integer range. Nothing of the change was written.',
    fix: 'Increment integer keys only.'
  },
  TETHER_ERR_SESSION_GONE: {
    status: 409,
    message: 'An explicit `session.save()` found the session destroyed, expired or regenerated away by another request; nothing was written. (At the end of a request the same situation is not an error: the changes are dropped and the cookie is cleared.)',
    fix: 'Treat the user as logged out.'
  },
  TETHER_ERR_LOCK_TIMEOUT: {
    status: 503,
    message: "Lock mode: the session's lock was not granted within `lock.wait`.",
    fix: 'Retry; raise `lock.wait`, or keep locked sections short.'
  },
  TETHER_ERR_LOCK_LOST: {
    status: 409,
    message: "Lock mode: the request's lease ran out (the process stalled past `lock.lease`) and another request took the lock; the fencing token refused this request's write.",
    fix: 'Raise `lock.lease`.'
  },
  TETHER_ERR_LOCK_UNSUPPORTED: {
    status: 500,
    message: 'Lock mode was asked of a store without `lock()`.',
    fix: 'Use a store with locks (Memory, Redis, SQLite, PostgreSQL, MySQL, memcached); `ConnectStore` has none.'
  },
  TETHER_ERR_STORE_CAPABILITY: {
    status: 500,
    message: 'An option needs something the store does not support (`owner` and `destroyAllFor()` need a store with the `destroyAll` capability: Memory, SQLite, PostgreSQL, MySQL, memcached, and Redis outside Cluster); refused at start-up. The message names the option and the store.',
    fix: 'Use a store that declares the capability in `store.capabilities`, or drop the option.'
  },
  TETHER_ERR_NEAR_CACHE_UNSUPPORTED: {
    status: 500,
    message: 'The near-cache was enabled with a store that cannot tell each process when another one changes a session (a connect-* store, SqliteStore, a RedisStore on ioredis or Redis Cluster), so copies could be served stale or after a logout. Refused at start-up.',
    fix: 'Use RedisStore with the node-redis client on a standalone Redis, or MemoryStore, or remove the `nearCache` option.'
  },
  TETHER_ERR_DEPENDENCY_MISSING: {
    status: 500,
    message: "A store needs an optional peer dependency that is not installed or does not load: `@redis/client` (RedisStore from a URL), `ioredis` (RedisStore with `driver: 'ioredis'`), `better-sqlite3` (SqliteStore), `pg` (PostgresStore), `mysql2` (MySqlStore) or `memcached` (MemcachedStore). The message names it.",
    fix: 'Install the package the message names: `npm install <package>` (for better-sqlite3 on npm 11, allow its install script with `allowScripts`).'
  },
  TETHER_ERR_INVALID_COOKIE_LIFETIME: {
    status: 500,
    message: '`req.session.cookie.maxAge` was set to something other than a number of milliseconds (at least 1000) or null, or `expires` to something other than a valid Date or null.',
    fix: 'Set `maxAge` in milliseconds (30 days: `30 * 86_400_000`), a future `Date` as `expires`, or null for a browser-session cookie.'
  }
} as const satisfies Record<string, ErrorDefinition>

/** Union of every error code this package can throw. */
export type ErrorCode = keyof typeof registry

/**
 * Base class of every error this package throws.
 *
 * @example
 * ```ts
 * try { await store.load(id, opts) } catch (err) {
 *   if (err instanceof TetherError && err.code === 'TETHER_ERR_STORE_UNAVAILABLE') retryLater()
 * }
 * ```
 */
export class TetherError extends Error {
  /** Stable, documented code such as `TETHER_ERR_STORE_UNAVAILABLE`. */
  readonly code: ErrorCode
  /** The HTTP status a framework adapter answers with (from the registry; every code has one). */
  readonly status: number
  /** The same as `status`, under the name Fastify's and Express's error handlers read. */
  readonly statusCode: number

  constructor (code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'TetherError'
    this.code = code
    this.status = registry[code].status
    this.statusCode = this.status
  }

  get [kTetherError] (): true { return true }

  static override [Symbol.hasInstance] (value: unknown): boolean {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[kTetherError] === true
  }
}

/**
 * Read-only view of the registry: code → `{ status, message, fix }`.
 *
 * @example
 * ```ts
 * errorCodes.TETHER_ERR_STORE_UNAVAILABLE.status // 503
 * ```
 */
export const errorCodes: Readonly<Record<ErrorCode, ErrorDefinition>> = Object.freeze(registry)

/**
 * Build a {@link TetherError}. Internal helper kept public so stores written outside this
 * package can raise the same codes.
 *
 * @example
 * ```ts
 * throw tetherError('TETHER_ERR_STORE_UNAVAILABLE', 'redis: connection refused', { cause: err })
 * ```
 */
export function tetherError (code: ErrorCode, message: string, options?: { cause?: unknown }): TetherError {
  return new TetherError(code, message, options)
}

/**
 * Wrap a failure of a write that was sent to the store and got no answer (a timeout, a dropped
 * connection) as `TETHER_ERR_STORE_OUTCOME_UNKNOWN`, keeping the cause; TetherErrors other
 * than `TETHER_ERR_STORE_UNAVAILABLE` pass through untouched (they are definite answers).
 *
 * @example
 * ```ts
 * try { reply = await redis.evalsha(sha, …) } catch (err) { throw outcomeUnknown('RedisStore', err) }
 * ```
 */
export function outcomeUnknown (backend: string, cause: unknown): TetherError {
  if (cause instanceof TetherError && cause.code !== 'TETHER_ERR_STORE_UNAVAILABLE') return cause
  const reason = cause instanceof Error ? cause.message : String(cause)
  return new TetherError('TETHER_ERR_STORE_OUTCOME_UNKNOWN', `session store (${backend}): a write was sent but its outcome is unknown (it may have been applied): ${reason}`, { cause })
}

/**
 * Wrap any failure of a store backend as `TETHER_ERR_STORE_UNAVAILABLE`, keeping the cause, and
 * pass TetherErrors through untouched. Only for failures that wrote nothing: a write that was
 * sent and then timed out is {@link outcomeUnknown}.
 *
 * @example
 * ```ts
 * try { await redis.ping() } catch (err) { throw storeUnavailable('redis', err) }
 * ```
 */
export function storeUnavailable (backend: string, cause: unknown): TetherError {
  if (cause instanceof TetherError) return cause
  const reason = cause instanceof Error ? cause.message : String(cause)
  return new TetherError('TETHER_ERR_STORE_UNAVAILABLE', `session store (${backend}) unavailable: ${reason}`, { cause })
}
