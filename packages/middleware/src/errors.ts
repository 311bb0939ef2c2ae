/**
 * The one error registry of `@tether/middleware`.
 *
 * Every error a user can see has a stable `code` (part of the public API: renaming one is a
 * breaking change), an HTTP `statusCode` where one applies, and a message that says what to do.
 * `instanceof TetherError` works across duplicate installs of the package because the check
 * uses a `Symbol.for` marker rather than the class identity (as undici does).
 */

const kTetherError = Symbol.for('tether.middleware.error')

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
  /** The HTTP status a framework adapter answers with; 500 for programmer errors. */
  readonly statusCode: number

  constructor (code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'TetherError'
    this.code = code
    this.statusCode = registry[code].statusCode
  }

  get [kTetherError] (): true { return true }

  static override [Symbol.hasInstance] (value: unknown): boolean {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[kTetherError] === true
  }
}

interface Definition { statusCode: number, summary: string }

/**
 * Every code, its HTTP status and what it means. `docs/errors.md` and the registry test are
 * checked against this table, so adding a code here is the whole job of adding one.
 */
const registry = {
  TETHER_ERR_INVALID_OPTION: { statusCode: 500, summary: 'An option passed at start-up is missing or has the wrong type or range.' },
  TETHER_ERR_SECRET_TOO_SHORT: { statusCode: 500, summary: 'A cookie secret is shorter than 32 characters; refused at start-up.' },
  TETHER_ERR_STORE_UNAVAILABLE: { statusCode: 503, summary: 'The session store is down, unreachable or timed out. Nothing was read or written; retry later.' },
  TETHER_ERR_STORE_CORRUPT: { statusCode: 500, summary: 'The store returned session data that is not valid JSON or not a valid record.' },
  TETHER_ERR_SESSION_UNSERIALIZABLE: { statusCode: 500, summary: 'A session value cannot be stored as JSON (circular, BigInt, function, symbol). Nothing was written.' },
  TETHER_ERR_RESERVED_KEY: { statusCode: 500, summary: 'A session key collides with a session method (save, id, …) or starts with a NUL character.' },
  TETHER_ERR_NOT_A_COUNTER: { statusCode: 500, summary: 'increment() was used on a key whose value is not a safe integer, or with a step that is not one.' },
  TETHER_ERR_SESSION_GONE: { statusCode: 409, summary: 'An explicit save() found the session destroyed, expired or regenerated away by another request; nothing was written.' },
  TETHER_ERR_LOCK_TIMEOUT: { statusCode: 503, summary: 'The per-session lock was not granted within the configured wait.' },
  TETHER_ERR_LOCK_LOST: { statusCode: 409, summary: "The request's lock lease expired and was taken over; its write was refused (fencing)." },
  TETHER_ERR_LOCK_UNSUPPORTED: { statusCode: 500, summary: 'Lock mode was requested but the configured store has no lock().' },
  TETHER_ERR_DEPENDENCY_MISSING: { statusCode: 500, summary: 'A store needs an optional peer dependency that is not installed or does not load (better-sqlite3 for SqliteStore); install it.' }
} as const satisfies Record<string, Definition>

/** Union of every error code this package can throw. */
export type ErrorCode = keyof typeof registry

/**
 * Read-only view of the registry: code → `{ statusCode, summary }`.
 *
 * @example
 * ```ts
 * errorCodes.TETHER_ERR_STORE_UNAVAILABLE.statusCode // 503
 * ```
 */
export const errorCodes: Readonly<Record<ErrorCode, Readonly<Definition>>> = Object.freeze(registry)

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
 * Wrap any failure of a store backend as `TETHER_ERR_STORE_UNAVAILABLE`, keeping the cause, and
 * pass TetherErrors through untouched.
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
