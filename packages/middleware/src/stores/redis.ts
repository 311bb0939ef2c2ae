/**
 * RedisStore on ioredis: one hash per session, every operation one atomic Lua script run by
 * SHA, so a read is one round trip (lazy TTL refresh included) and a write is one round trip
 * (HSET + HDEL + HINCRBY + PEXPIRE together).
 */
import { Redis } from 'ioredis'
import type { Cluster, RedisOptions } from 'ioredis'
import { storeUnavailable, tetherError } from '../errors.js'
import { KeyedMutex } from '../keyed-mutex.js'
import type { ApplyResult, LoadOptions, LockOptions, SessionChange, SessionLock, SessionStore, StoredSession } from '../store.js'
import { APPLY, LOAD, LOCK, RENEW, TOUCH, UNLOCK } from './redis-scripts.js'

/** Options of {@link RedisStore}: give either `client` or `url`. */
export interface RedisStoreOptions {
  /**
   * An ioredis client or Cluster you own; the store does not close it. Give it a
   * `commandTimeout`, or a hung Redis can hang requests.
   */
  client?: Redis | Cluster
  /** `redis://[user:password@]host:port/db`, or `rediss://` for TLS. The store owns this client. */
  url?: string
  /** Extra ioredis options for a client made from `url`. */
  redisOptions?: RedisOptions
  /** Key prefix. Default `tether:sess:`. May not contain braces (they are the cluster hash tag). */
  prefix?: string
  /** Per-command timeout for a client made from `url` (ms). Default 2000. */
  commandTimeout?: number
}

type LoadReply = [string[], number, number] | null
type ApplyReply = [string, ...Array<number | string>]

interface Commands {
  tetherLoad (key: string, now: number, idle: number, below: number): Promise<LoadReply>
  tetherApply (hash: string, lock: string, ...args: Array<string | number>): Promise<ApplyReply>
  tetherTouch (hash: string, ttl: number, now: number): Promise<number>
  tetherLock (hash: string, lock: string, lease: number): Promise<[number, number]>
  tetherRenew (lock: string, token: number, lease: number): Promise<number>
  tetherUnlock (lock: string, token: number, channel: string, id: string): Promise<number>
}

type ScriptedRedis = (Redis | Cluster) & Commands

const CREATED = '\u0000c'
const ABSOLUTE = '\u0000a'
const VERSION = '\u0000v'

/**
 * A session store on Redis (standalone, Sentinel or Cluster through ioredis).
 *
 * @example
 * ```ts
 * import { fastifySession, RedisStore } from '@tether/middleware'
 * const store = new RedisStore({ url: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', prefix: 'myapp:sess:' })
 * app.register(fastifySession, { secret: process.env.SESSION_SECRET!, store })
 * ```
 */
export class RedisStore implements SessionStore {
  readonly #client: ScriptedRedis
  readonly #owns: boolean
  readonly #prefix: string
  readonly #channel: string
  readonly #gate = new KeyedMutex()
  /** Sessions whose lock this process is waiting for: release epoch and the wake-up of the waiter. */
  readonly #waiting = new Map<string, { epoch: number, wake: (() => void) | undefined }>()
  #subscriber: Redis | Cluster | undefined
  #subscribed: Promise<void> | undefined

  constructor (options: RedisStoreOptions) {
    const prefix = options.prefix ?? 'tether:sess:'
    if (typeof prefix !== 'string' || /[{}]/.test(prefix)) {
      throw tetherError('TETHER_ERR_INVALID_OPTION', `RedisStore option 'prefix' must be a string without braces; got ${JSON.stringify(prefix)}`)
    }
    this.#prefix = prefix
    this.#channel = `${prefix}unlock`
    if (options.client !== undefined) {
      this.#client = options.client as ScriptedRedis
      this.#owns = false
    } else if (typeof options.url === 'string') {
      this.#client = new Redis(options.url, {
        commandTimeout: options.commandTimeout ?? 2000,
        connectTimeout: 2000,
        // Fail queued commands when a connection attempt fails instead of retrying them: a
        // request must get its 503 now, not after Redis has been back for a while.
        maxRetriesPerRequest: 0,
        // Commands issued in the same tick share one socket write: under concurrency this is
        // most of the client-side cost of a round trip.
        enableAutoPipelining: true,
        retryStrategy: (attempt) => Math.min(50 * attempt, 1000),
        ...options.redisOptions
      }) as ScriptedRedis
      // Errors surface on the commands that hit them; without a listener ioredis would also
      // print every reconnect failure as an unhandled 'error' event.
      this.#client.on('error', () => {})
      this.#owns = true
    } else {
      throw tetherError('TETHER_ERR_INVALID_OPTION', "RedisStore needs either a 'client' (ioredis) or a 'url' (redis:// or rediss://)")
    }
    define(this.#client)
  }

  /** The ioredis client this store uses. */
  get client (): Redis | Cluster { return this.#client }

  /** The Redis key of a session's hash. */
  key (id: string): string {
    return `${this.#prefix}{${id}}`
  }

  async load (id: string, options: LoadOptions): Promise<StoredSession | undefined> {
    this.#ready()
    const reply = await this.#client.tetherLoad(this.key(id), options.now, options.idleTimeout, options.refreshBelow)
    if (reply === null) return undefined
    const [flat, pttl, refreshed] = reply
    const fields = new Map<string, string>()
    let createdAt = 0
    let absoluteExpiry = Number.POSITIVE_INFINITY
    let version = 0
    for (let i = 0; i < flat.length; i += 2) {
      const name = flat[i]!
      const value = flat[i + 1]!
      if (name.charCodeAt(0) !== 0) fields.set(name, value)
      else if (name === CREATED) createdAt = Number(value)
      else if (name === ABSOLUTE) absoluteExpiry = Number(value)
      else if (name === VERSION) version = Number(value)
    }
    if (!Number.isFinite(absoluteExpiry)) {
      throw tetherError('TETHER_ERR_STORE_CORRUPT', `Redis hash ${this.key(id)} has no absolute deadline; it was not written by RedisStore`)
    }
    return { fields, createdAt, absoluteExpiry, expiresAt: options.now + (pttl >= 0 ? pttl : 0), version, refreshed: refreshed === 1 }
  }

  async apply (id: string, change: SessionChange): Promise<ApplyResult> {
    this.#ready()
    const args: Array<string | number> = [
      change.create?.createdAt ?? '',
      change.create?.absoluteExpiry ?? '',
      Math.max(1, Math.ceil(change.ttl)),
      change.fence ?? '',
      change.set.length,
      change.del.length,
      change.incr.length,
      change.now
    ]
    for (const [key, json] of change.set) args.push(key, json)
    for (const key of change.del) args.push(key)
    for (const [key, by] of change.incr) args.push(key, by)
    const hash = this.key(id)
    const reply = await this.#client.tetherApply(hash, `${hash}:lock`, ...args)
    const status = reply[0]
    if (status === 'ok') {
      const counters = new Map<string, number>()
      change.incr.forEach(([key], i) => counters.set(key, Number(reply[2 + i])))
      return { ok: true, version: Number(reply[1]), counters }
    }
    if (status === 'notint') throw tetherError('TETHER_ERR_NOT_A_COUNTER', `increment('${String(reply[1])}'): the stored value is not an integer`)
    if (status === 'gone' || status === 'exists' || status === 'fenced') return { ok: false, reason: status }
    throw tetherError('TETHER_ERR_STORE_CORRUPT', `unexpected reply from the apply script: ${JSON.stringify(reply)}`)
  }

  async destroy (id: string): Promise<void> {
    this.#ready()
    await this.#client.del(this.key(id))
  }

  async touch (id: string, ttl: number, now: number): Promise<boolean> {
    this.#ready()
    return (await this.#client.tetherTouch(this.key(id), Math.max(1, Math.ceil(ttl)), now)) === 1
  }

  async lock (id: string, options: LockOptions): Promise<SessionLock | undefined> {
    this.#ready()
    const deadline = Date.now() + options.wait
    await this.#subscribe()
    // Only the first of this process's waiters for a session talks to Redis; the others queue
    // here, so one release wakes one request per node instead of every waiting request.
    const leave = await this.#gate.acquire(id, options.wait)
    const hash = this.key(id)
    const lockKey = `${hash}:lock`
    const interest = { epoch: 0, wake: undefined as (() => void) | undefined }
    this.#waiting.set(id, interest)
    try {
      for (;;) {
        const epoch = interest.epoch
        const [token, pttl] = await this.#client.tetherLock(hash, lockKey, options.lease)
        if (token === -1) {
          this.#waiting.delete(id)
          leave()
          return undefined
        }
        if (token > 0) {
          this.#waiting.delete(id)
          return this.#held(id, lockKey, token, options, leave)
        }
        const remaining = deadline - Date.now()
        if (remaining <= 0) throw tetherError('TETHER_ERR_LOCK_TIMEOUT', `session lock not granted within ${options.wait} ms`)
        // A release announced while our attempt was on the wire bumped the epoch: retry now
        // rather than sleep through it. Otherwise sleep until a release or the lease runs out.
        if (interest.epoch !== epoch) continue
        await new Promise<void>((resolve) => {
          const timer = setTimeout(done, Math.min(pttl > 0 ? pttl + 5 : remaining, remaining))
          function done (): void { clearTimeout(timer); interest.wake = undefined; resolve() }
          interest.wake = done
        })
      }
    } catch (err) {
      this.#waiting.delete(id)
      leave()
      throw err
    }
  }

  async close (): Promise<void> {
    const subscriber = this.#subscriber
    this.#subscriber = undefined
    if (subscriber !== undefined) subscriber.disconnect()
    if (this.#owns) {
      try { await this.#client.quit() } catch { this.#client.disconnect() }
    }
  }

  #held (id: string, lockKey: string, token: number, options: LockOptions, leave: () => void): SessionLock {
    // Once the lease is known lost, this process's next waiter may contend: the local gate must
    // not outlive the Redis lock it stands for.
    let renewer: NodeJS.Timeout | undefined
    let expiry: NodeJS.Timeout | undefined
    if (options.renew !== false) {
      renewer = setInterval(() => {
        this.#client.tetherRenew(lockKey, token, options.lease).then((ok) => {
          // Lost (expired while the process stalled): stop renewing; the fence refuses our write.
          if (ok !== 1) { clearInterval(renewer); leave() }
        }, () => {})
      }, Math.max(10, Math.floor(options.lease / 3)))
      renewer.unref()
    } else {
      expiry = setTimeout(leave, options.lease)
      expiry.unref()
    }
    let released: Promise<void> | undefined
    return {
      token,
      release: () => {
        released ??= (async () => {
          clearInterval(renewer)
          clearTimeout(expiry)
          try {
            await this.#client.tetherUnlock(lockKey, token, this.#channel, id)
          } catch (err) {
            throw storeUnavailable('RedisStore', err)
          } finally {
            leave()
          }
        })()
        return released
      }
    }
  }

  async #subscribe (): Promise<void> {
    this.#subscribed ??= (async () => {
      const subscriber = this.#client.duplicate()
      subscriber.on('error', () => {})
      subscriber.on('message', (_channel: string, id: string) => {
        const interest = this.#waiting.get(id)
        if (interest === undefined) return
        interest.epoch++
        interest.wake?.()
      })
      this.#subscriber = subscriber
      await subscriber.subscribe(this.#channel)
    })().catch((err: unknown) => {
      this.#subscribed = undefined
      throw storeUnavailable('RedisStore', err)
    })
    return this.#subscribed
  }

  /** Fail fast while the connection is down, instead of queueing behind a reconnect. */
  #ready (): void {
    const status = this.#client.status
    if (status === 'reconnecting' || status === 'close' || status === 'end') {
      throw tetherError('TETHER_ERR_STORE_UNAVAILABLE', `session store (RedisStore) unavailable: connection is ${status}`)
    }
  }
}

const defined = new WeakSet<Redis | Cluster>()

function define (client: Redis | Cluster): void {
  if (defined.has(client)) return
  defined.add(client)
  client.defineCommand('tetherLoad', { numberOfKeys: 1, lua: LOAD })
  client.defineCommand('tetherApply', { numberOfKeys: 2, lua: APPLY })
  client.defineCommand('tetherTouch', { numberOfKeys: 1, lua: TOUCH })
  client.defineCommand('tetherLock', { numberOfKeys: 2, lua: LOCK })
  client.defineCommand('tetherRenew', { numberOfKeys: 1, lua: RENEW })
  client.defineCommand('tetherUnlock', { numberOfKeys: 1, lua: UNLOCK })
}
