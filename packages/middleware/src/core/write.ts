/**
 * The write path of a request: collect what it changed (per top-level key), send that as one
 * {@link SessionChange} (one apply, one round trip), and settle the outcome: the state and the
 * sticky copy follow an accepted write; a refused one is a lost lock, an id collision (retried
 * under a fresh id) or a session that ended while the request ran.
 */
import { encodeValue } from '../codec.js'
import { outcomeUnknown, tetherError, TetherError } from '../errors.js'
import { newId } from '../id.js'
import type { ResolvedOptions } from '../options.js'
import { LIFETIME_FIELD } from '../session/state.js'
import type { SessionState } from '../session/state.js'
import type { NearCache } from '../near-cache.js'
import type { ApplyResult, SessionChange, SessionStore } from '../store.js'

/**
 * What the write path needs of the session manager.
 *
 * @example
 * ```ts
 * await writeChange(manager, state, false)
 * ```
 */
export interface WriteContext {
  readonly store: SessionStore
  readonly options: ResolvedOptions
  readonly nearCache: NearCache | undefined
  /** The store's name, for error messages. */
  readonly backend: string
}

/** The keys a request set, deleted and incremented, as a change carries them. */
type Collected = Pick<SessionChange, 'set' | 'del' | 'incr'>

/**
 * The idle TTL a write or touch sets now: the idle timeout, capped by the absolute deadline.
 *
 * @example
 * ```ts
 * const ttl = idleTtl(state, manager.options, Date.now())
 * ```
 */
export function idleTtl (state: SessionState, options: ResolvedOptions, now: number): number {
  // A session given its own cookie lifetime ("remember me") lives that long idle instead.
  const idle = typeof state.lifetime === 'number' ? state.lifetime : options.idleTimeout
  return Math.min(idle, state.absoluteExpiry - now)
}

/**
 * Write what the request changed, if anything, in one apply. `explicit` is a `session.save()`
 * call: a session that ended meanwhile is then an error (`TETHER_ERR_SESSION_GONE`) rather than
 * changes silently dropped at the end of the request.
 *
 * @example
 * ```ts
 * await writeChange(manager, state, true) // session.save()
 * ```
 */
export async function writeChange (ctx: WriteContext, state: SessionState, explicit: boolean): Promise<void> {
  const { set, del, incr } = collect(state)
  if (set.length === 0 && del.length === 0 && incr.length === 0) {
    if (!state.isNew || !ctx.options.saveUninitialized) return
  }
  const owner = ownerOf(ctx.options.owner, set, del)
  const now = Date.now()
  // One identity for this change, kept by its retry: a store that applies an id at most once
  // then answers the retry of an applied change instead of applying it again.
  const writeId = newId()
  for (let attempt = 0; ; attempt++) {
    const creating = state.isNew
    if (creating) {
      state.createdAt = now
      state.absoluteExpiry = now + ctx.options.absoluteTimeout
    }
    const ttl = idleTtl(state, ctx.options, now)
    if (ttl <= 0) return gone(ctx, state, explicit)
    const change: SessionChange = {
      ...(creating ? { create: { createdAt: state.createdAt, absoluteExpiry: state.absoluteExpiry } } : {}),
      set,
      del,
      incr,
      ttl,
      now,
      ...(state.lockHandle !== undefined ? { fence: state.lockHandle.token } : {}),
      writeId,
      ...(owner !== undefined ? { owner } : {})
    }
    const id = state.sessionId()
    let result
    try {
      result = await applyOnce(ctx, state, id, change)
    } catch (err) {
      settleFailure(ctx, state, id, err)
      throw err
    }
    if (result.ok) {
      remember(ctx, state, id, creating, change, result.version, result.counters)
      state.saved({ set, del, counters: result.counters }, result.version, creating)
      return
    }
    if (result.reason === 'fenced') {
      throw tetherError('TETHER_ERR_LOCK_LOST', `session lock lease expired before the write of session ${id.slice(0, 6)}…; the write was refused. Raise lock.lease or shorten the request`)
    }
    if (result.reason === 'exists' && attempt === 0) {
      // 192 random bits make this practically impossible; a fresh id settles it if it happens.
      state.id = newId()
      continue
    }
    return gone(ctx, state, explicit)
  }
}

/**
 * Apply `change`, retrying once under the same write id when the first attempt's outcome is
 * unknown and the store applies an id at most once (so the retry either applies the change or
 * finds it applied, and answers with its result). Without that promise a retry could apply an
 * increment twice, so the unknown outcome is reported as it is.
 *
 * Both tries share one deadline (the store's `writeTimeout` from the first send): a retry gets
 * only what the first try left, so a store that stops answering (a `CLIENT PAUSE`, a stalled
 * network) fails the request within one timeout, not two. A first try that timed out has used
 * it all, and is answered at once; the retry is for one that failed early (a dropped connection).
 */
async function applyOnce (ctx: WriteContext, state: SessionState, id: string, change: SessionChange): Promise<ApplyResult> {
  const budget = ctx.store.writeTimeout
  const timed: SessionChange = budget === undefined ? change : { ...change, deadline: Date.now() + budget }
  let first: TetherError
  try {
    return await ctx.store.apply(id, timed)
  } catch (err) {
    first = classify(ctx.backend, err)
  }
  if (first.code !== 'TETHER_ERR_STORE_OUTCOME_UNKNOWN' || ctx.store.exactlyOnce !== true) throw first
  const left = timed.deadline === undefined ? Number.POSITIVE_INFINITY : timed.deadline - Date.now()
  if (left < MIN_RETRY_MS) {
    state.log.warn({ session: id.slice(0, 6), err: first }, 'tether: a session write got no answer within the store\'s write timeout; its outcome is unknown')
    throw first
  }
  state.log.warn({ session: id.slice(0, 6), err: first, leftMs: Math.round(left) }, 'tether: a session write got no answer; retrying it once under the same write id')
  try {
    return await ctx.store.apply(id, timed)
  } catch (err) {
    // A definite answer to the retry (a counter that is not one) settles the question; a
    // retry that failed to get through says nothing about the first attempt.
    if (err instanceof TetherError && err.code !== 'TETHER_ERR_STORE_UNAVAILABLE' && err.code !== 'TETHER_ERR_STORE_OUTCOME_UNKNOWN') throw err
    throw first
  }
}

/** Below this much of the write budget left, a retry could not get an answer: none is sent. */
const MIN_RETRY_MS = 20

/**
 * A store's failure as a TetherError. Stores report their own codes; a raw error from a store
 * written elsewhere says nothing about whether the write landed, so it counts as unknown.
 */
function classify (backend: string, err: unknown): TetherError {
  return err instanceof TetherError ? err : outcomeUnknown(backend, err)
}

/**
 * A write failed: its changes are settled now, whatever the response does next. They are
 * dropped from the request, so the hook that sends the error reply does not write them a
 * second time (the store may hold them already, or the client was told they were not saved);
 * changes made after this still save as usual. When the outcome is unknown, this process's
 * copy of the session may be stale.
 */
function settleFailure (ctx: WriteContext, state: SessionState, id: string, err: unknown): void {
  state.pending.clear()
  state.handedOut.clear()
  if (!(err instanceof TetherError) || err.code === 'TETHER_ERR_STORE_OUTCOME_UNKNOWN') ctx.nearCache?.delete(id)
}

/** Collect what the request changed: pending writes, plus in-place mutations of handed-out objects. */
function collect (state: SessionState): Collected {
  const set: Array<[string, string]> = []
  const del: string[] = []
  const incr: Array<[string, number]> = []
  for (const [key, op] of state.pending) {
    // An assignment is a write and a delete is a delete, even when the value equals what this
    // request loaded: the loaded value may be older than the store's (another request wrote
    // meanwhile), and skipping the write would silently lose the one this request acknowledges.
    if (op.kind === 'del') {
      if (!state.isNew) del.push(key)
    } else if (op.kind === 'incr') {
      incr.push([key, op.by])
    } else {
      const json = encodeValue(key, state.data[key])
      if (json === undefined) { if (!state.isNew) del.push(key) } else set.push([key, json])
    }
  }
  const lifetime = state.lifetimeField()
  if (lifetime !== undefined) set.push([LIFETIME_FIELD, lifetime])
  for (const key of state.handedOut) {
    if (state.pending.has(key) || !(key in state.data)) continue
    const json = encodeValue(key, state.data[key])
    if (json !== undefined && json !== state.stored.get(key)) set.push([key, json])
  }
  return { set, del, incr }
}

/**
 * The owner this change gives the session (`owner` option): the key's new value as a string
 * (a string or a number; anything else indexes nothing), null when the key is deleted,
 * undefined when the change leaves it alone.
 */
function ownerOf (key: string | undefined, set: Collected['set'], del: Collected['del']): string | null | undefined {
  if (key === undefined) return undefined
  if (del.includes(key)) return null
  const entry = set.find(([k]) => k === key)
  if (entry === undefined) return undefined
  const value: unknown = JSON.parse(entry[1])
  return typeof value === 'string' || typeof value === 'number' ? String(value) : null
}

/**
 * Keep the near-cache in step with a write the store accepted. A session created here is not
 * cached: the store's invalidation of the creation is on its way and would drop the copy.
 */
function remember (ctx: WriteContext, state: SessionState, id: string, creating: boolean, change: SessionChange, version: number, counters: ReadonlyMap<string, number>): void {
  const cache = ctx.nearCache
  if (cache === undefined || creating) return
  cache.applied(id, version, { set: change.set, del: change.del, counters }, Math.min(change.now + change.ttl, state.absoluteExpiry))
}

/** The session was destroyed, expired or regenerated away while this request ran. */
function gone (ctx: WriteContext, state: SessionState, explicit: boolean): void {
  const id = state.id ?? ''
  if (id !== '') ctx.nearCache?.delete(id)
  state.reset()
  state.sendCookie = false
  state.log.info({ session: id.slice(0, 6) }, 'tether: session ended while the request ran; its changes were not saved')
  if (explicit) throw tetherError('TETHER_ERR_SESSION_GONE', 'session.save(): the session was destroyed, expired or regenerated by another request; nothing was written')
}
