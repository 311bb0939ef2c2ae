/**
 * The write path of a request: collect what it changed (per top-level key), send that as one
 * {@link SessionChange} (one apply, one round trip), and settle the outcome: the state and the
 * sticky copy follow an accepted write; a refused one is a lost lock, an id collision (retried
 * under a fresh id) or a session that ended while the request ran.
 */
import { encodeValue } from '../codec.js'
import { storeUnavailable, tetherError } from '../errors.js'
import { newId } from '../id.js'
import type { ResolvedOptions } from '../options.js'
import { LIFETIME_FIELD } from '../session/state.js'
import type { SessionState } from '../session/state.js'
import type { StickyCache } from '../sticky-cache.js'
import type { SessionChange, SessionStore } from '../store.js'

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
  readonly stickyCache: StickyCache | undefined
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
  const now = Date.now()
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
      ...(state.lockHandle !== undefined ? { fence: state.lockHandle.token } : {})
    }
    const id = state.sessionId()
    let result
    try {
      result = await ctx.store.apply(id, change)
    } catch (err) {
      throw storeUnavailable(ctx.backend, err)
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

/** Collect what the request changed: pending writes, plus in-place mutations of handed-out objects. */
function collect (state: SessionState): Collected {
  const set: Array<[string, string]> = []
  const del: string[] = []
  const incr: Array<[string, number]> = []
  for (const [key, op] of state.pending) {
    if (op.kind === 'del') {
      if (!state.isNew && state.stored.has(key)) del.push(key)
    } else if (op.kind === 'incr') {
      incr.push([key, op.by])
    } else {
      const json = encodeValue(key, state.data[key])
      if (json === undefined) { if (!state.isNew && state.stored.has(key)) del.push(key) } else if (json !== state.stored.get(key) || state.isNew) set.push([key, json])
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

/** Keep the sticky cache in step with a write the store accepted. */
function remember (ctx: WriteContext, state: SessionState, id: string, creating: boolean, change: SessionChange, version: number, counters: ReadonlyMap<string, number>): void {
  const cache = ctx.stickyCache
  if (cache === undefined) return
  const expiresAt = Math.min(change.now + change.ttl, state.absoluteExpiry)
  if (!creating) {
    cache.applied(id, version, { set: change.set, del: change.del, counters }, expiresAt)
    return
  }
  // A session created here is known to nobody else yet; cache it if the balancer will route
  // it back here (any trusted route: its sticky cookie is being set on this very response).
  if (state.route === undefined || state.route === 'untrusted') return
  const fields = new Map<string, string>(change.set)
  for (const [key, value] of counters) fields.set(key, String(value))
  cache.put(id, { fields, createdAt: state.createdAt, absoluteExpiry: state.absoluteExpiry, expiresAt, version, refreshed: false }, change.now)
}

/** The session was destroyed, expired or regenerated away while this request ran. */
function gone (ctx: WriteContext, state: SessionState, explicit: boolean): void {
  const id = state.id ?? ''
  if (id !== '') ctx.stickyCache?.delete(id)
  state.reset()
  state.sendCookie = false
  state.log.info({ session: id.slice(0, 6) }, 'tether: session ended while the request ran; its changes were not saved')
  if (explicit) throw tetherError('TETHER_ERR_SESSION_GONE', 'session.save(): the session was destroyed, expired or regenerated by another request; nothing was written')
}
