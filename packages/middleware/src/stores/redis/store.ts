/**
 * RedisStore: one hash per session. A read is one HGETALL (one round trip, no script); a write
 * is one Lua script run by SHA (HSET + HDEL + HINCRBY + PEXPIRE together, atomically, in one
 * round trip). The lazy idle-TTL refresh rides along with the read that finds it due, without
 * making the request wait for it.
 */
import type { ConnectionOptions } from 'node:tls'
import type { Cluster, Redis, RedisOptions } from 'ioredis'
import { outcomeUnknown, storeUnavailable, tetherError } from '../../errors.js'
import type { TetherError } from '../../errors.js'
import type { ApplyResult, InvalidationChannel, InvalidationOptions, LoadOptions, LockOptions, SessionChange, SessionLock, SessionStore, StoreCapabilities, StoredSession } from '../../store.js'
import { StoreLocks } from '../kit/index.js'
import type { RedisDriver } from './driver.js'
import { IoredisDriver, isIoredis } from './ioredis.js'
import { RedisInvalidations, unsupported } from './invalidations.js'
import type { SentinelOptions } from './ioredis.js'
import { NodeRedisDriver, isNodeRedis } from './node-redis.js'
import type { NodeRedisClient } from './node-redis.js'
import { APPLY, DESTROY_ALL, LOCK, RENEW, TOUCH, UNLOCK } from './scripts.js'

/** Options of {@link RedisStore}: give `client`, `url` or `sentinel`. */
export interface RedisStoreOptions {
  /**
   * A client you own (the store does not close it): node-redis v5 (`createClient()` /
   * `createCluster()` from `redis` or `@redis/client`), or ioredis (`Redis` / `Cluster`).
   * Give it a command timeout, or a hung Redis can hang requests.
   */
  client?: NodeRedisClient | Redis | Cluster
  /** `redis://[user:password@]host:port/db`, or `rediss://` for TLS. The store owns this client. */
  url?: string
  /**
   * A primary managed by Redis Sentinel: the store asks the sentinels for the current primary
   * and follows failovers (through ioredis, whose Sentinel client is the mature one: this
   * option implies `driver: 'ioredis'`). While a failover runs, requests fail fast with
   * `TETHER_ERR_STORE_UNAVAILABLE` (503) and recover by themselves once a new primary is
   * elected. Replication is asynchronous: see `waitForReplicas`.
   */
  sentinel?: SentinelOptions
  /**
   * After each session write (`apply`, `destroy`), wait until this many replicas have it
   * (`WAIT replicas timeout`), so a failover cannot lose a write the app was told succeeded.
   * When fewer replicas confirm in time the write has still happened on the primary, but
   * the request fails with `TETHER_ERR_WRITE_UNCONFIRMED` (503) rather than claim a
   * durability it does not have. Costs one more round trip per write plus the replication
   * delay (docs/stores.md). Not for Redis Cluster.
   */
  waitForReplicas?: { replicas: number, timeout: number }
  /**
   * Which client to create from `url` (each is an optional peer dependency: install the one you
   * pick). Default `'node-redis'` (`@redis/client`), which measured about 3× less CPU per
   * command than ioredis here; `'ioredis'` is fully supported, for apps that already run it.
   */
  driver?: 'node-redis' | 'ioredis'
  /** Extra ioredis options, for `driver: 'ioredis'` with `url`. */
  redisOptions?: RedisOptions
  /**
   * TLS options for a `rediss://` URL, with either driver: a private CA (`ca`), client
   * certificates (`cert`, `key`), `servername`. The system's CAs are used without it.
   */
  tls?: ConnectionOptions
  /** Key prefix. Default `tether:sess:`. May not contain braces (they are the cluster hash tag). */
  prefix?: string
  /**
   * Per-command timeout (ms), so a hung Redis cannot hang a request. Default 2000. Applies to
   * a node-redis client you pass too; an ioredis client brings its own `commandTimeout`.
   */
  commandTimeout?: number
}

const CREATED = '\u0000c'
const ABSOLUTE = '\u0000a'
const EXPIRES = '\u0000e'
const VERSION = '\u0000v'

/**
 * A session store on Redis: standalone, Sentinel or Cluster.
 *
 * @example
 * ```ts
 * import { fastifySession, RedisStore } from '@tether/middleware'
 * const store = new RedisStore({ url: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', prefix: 'myapp:sess:' })
 * app.register(fastifySession, { secret: process.env.SESSION_SECRET!, store })
 * ```
 */
export class RedisStore implements SessionStore {
  /** A change's write id is applied at most once per session (see {@link SessionStore.exactlyOnce}). */
  readonly exactlyOnce = true
  /**
   * Log out everywhere on standalone and Sentinel Redis: a set per owner, kept by the same
   * script as the write. Not on Redis Cluster, where one user's sessions live in different
   * slots, so no script can update the index with the write or delete them all at once: there
   * the `owner` option is refused at start-up with `TETHER_ERR_STORE_CAPABILITY`.
   */
  readonly capabilities: StoreCapabilities
  /**
   * Destroy every session of one owner, atomically (one script); `undefined` on Redis Cluster
   * (see {@link RedisStore.capabilities}).
   *
   * @example
   * ```ts
   * const ended = await store.destroyAll?.('user-42')
   * ```
   */
  readonly destroyAll: ((owner: string) => Promise<number>) | undefined
  /** The `commandTimeout`: a write's first try and its retry share it. */
  readonly writeTimeout: number
  readonly #driver: RedisDriver
  readonly #prefix: string
  /** Owner sets are `<prefix>owner:<owner>`: no brace, so the near-cache's channel ignores them. */
  readonly #ownerPrefix: string
  readonly #channel: string
  readonly #locks: StoreLocks
  readonly #wait: { replicas: number, timeout: number } | undefined
  #subscribed: Promise<void> | undefined
  readonly #channels = new Set<RedisInvalidations>()

  constructor (options: RedisStoreOptions) {
    const prefix = options.prefix ?? 'tether:sess:'
    if (typeof prefix !== 'string' || /[{}]/.test(prefix)) {
      throw tetherError('TETHER_ERR_INVALID_OPTION', `RedisStore option 'prefix' must be a string without braces; got ${JSON.stringify(prefix)}`)
    }
    this.#prefix = prefix
    this.#ownerPrefix = `${prefix}owner:`
    this.#channel = `${prefix}unlock`
    const driver = this.#driver = openDriver(options)
    this.writeTimeout = writeTimeout(options)
    this.#wait = replicaWait(options.waitForReplicas)
    this.capabilities = { destroyAll: !driver.cluster }
    this.destroyAll = driver.cluster ? undefined : async (owner) => await this.#destroyAll(owner)
    const lockKey = (id: string): string => `${this.key(id)}:lock`
    this.#locks = new StoreLocks({
      attempt: async (id, lease) => {
        const [token, pttl] = (await driver.evalScript(LOCK, [this.key(id), lockKey(id)], [lease]) as number[]).map(Number) as [number, number]
        return token === -1 ? 'missing' : token > 0 ? { token } : { retryIn: pttl }
      },
      renew: async (id, token, lease) => Number(await driver.evalScript(RENEW, [lockKey(id)], [token, lease])) === 1,
      release: async (id, token) => {
        try {
          await driver.evalScript(UNLOCK, [lockKey(id)], [token, this.#channel, id])
        } catch (err) {
          throw storeUnavailable('RedisStore', err)
        }
      }
    })
  }

  /** Which client library this store talks through: `node-redis` or `ioredis`. */
  get driver (): string { return this.#driver.name }

  /** The Redis key of a session's hash. */
  key (id: string): string {
    return `${this.#prefix}{${id}}`
  }

  async load (id: string, options: LoadOptions): Promise<StoredSession | undefined> {
    const down = this.#driver.readUnavailable()
    if (down !== undefined) throw this.#down(down)
    // On the read connection: reads keep answering while writes wait (CLIENT PAUSE WRITE).
    const reply = await this.#driver.read('HGETALL', this.key(id))
    const flat = pairs(reply)
    if (flat.length === 0) return undefined
    const fields = new Map<string, string>()
    let createdAt = 0
    let absoluteExpiry = Number.NaN
    let expiresAt = Number.NaN
    let version = 0
    for (let i = 0; i < flat.length; i += 2) {
      const name = flat[i]!
      const value = flat[i + 1]!
      if (name.charCodeAt(0) !== 0) fields.set(name, value)
      else if (name === CREATED) createdAt = Number(value)
      else if (name === ABSOLUTE) absoluteExpiry = Number(value)
      else if (name === EXPIRES) expiresAt = Number(value)
      else if (name === VERSION) version = Number(value)
    }
    if (!Number.isFinite(absoluteExpiry) || !Number.isFinite(expiresAt)) {
      throw tetherError('TETHER_ERR_STORE_CORRUPT', `Redis hash ${this.key(id)} has no deadlines; it was not written by RedisStore`)
    }
    const { now } = options
    let refreshed = false
    if (options.refreshBelow > 0 && expiresAt - now < options.refreshBelow && expiresAt < absoluteExpiry) {
      // Sent now, not waited for: the request costs one round trip. A refresh that fails only
      // means the next read finds it still due.
      const ttl = Math.min(options.idleTimeout, absoluteExpiry - now)
      this.#driver.evalScript(TOUCH, [this.key(id)], [Math.max(1, Math.ceil(ttl)), now]).catch(() => {})
      expiresAt = now + ttl
      refreshed = true
    }
    return { fields, createdAt, absoluteExpiry, expiresAt, version, refreshed }
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
      change.now,
      change.writeId ?? ''
    ]
    for (const [key, json] of change.set) args.push(key, json)
    for (const key of change.del) args.push(key)
    for (const [key, by] of change.incr) args.push(key, by)
    const hash = this.key(id)
    const keys = [hash, `${hash}:lock`, `${hash}:w`]
    // The owner index exists outside Cluster only (see capabilities).
    if (change.owner !== undefined && this.destroyAll !== undefined) {
      args.push(change.owner === null ? 'clear' : 'set', change.owner ?? '', this.#ownerPrefix)
      if (change.owner !== null) keys.push(this.#ownerPrefix + change.owner)
    }
    const left = change.deadline === undefined ? undefined : change.deadline - Date.now()
    if (left !== undefined && left <= 0) throw storeUnavailable('RedisStore', new Error('no time left of the write timeout; nothing was sent'))
    let reply: Array<string | number>
    try {
      reply = await this.#driver.evalScript(APPLY, keys, args, left) as Array<string | number>
    } catch (err) {
      // Redis answered with an error: the script stopped before writing (it validates first).
      // Anything else (our timer, a dropped connection) leaves the write possibly applied.
      throw isErrorReply(err) ? storeUnavailable('RedisStore', err) : outcomeUnknown('RedisStore', err)
    }
    const status = reply[0]
    if (status === 'ok') {
      await this.#replicated(hash)
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
    const hash = this.key(id)
    await this.#driver.command('DEL', hash, [`${hash}:w`])
    await this.#replicated(hash)
  }

  async #destroyAll (owner: string): Promise<number> {
    this.#ready()
    const set = this.#ownerPrefix + owner
    const n = Number(await this.#driver.evalScript(DESTROY_ALL, [set], [owner]))
    await this.#replicated(set)
    return n
  }

  async touch (id: string, ttl: number, now: number): Promise<boolean> {
    this.#ready()
    return Number(await this.#driver.evalScript(TOUCH, [this.key(id)], [Math.max(1, Math.ceil(ttl)), now])) === 1
  }

  async lock (id: string, options: LockOptions): Promise<SessionLock | undefined> {
    this.#ready()
    await this.#subscribe()
    return await this.#locks.lock(id, options)
  }

  /**
   * The near-cache's invalidation channel: a dedicated RESP3 connection with `CLIENT TRACKING`
   * in BCAST mode on this store's prefix (see invalidations.ts for why BCAST). node-redis on a
   * standalone server only; ioredis (RESP2) and Cluster throw `TETHER_ERR_NEAR_CACHE_UNSUPPORTED`.
   */
  invalidations (listener: (id: string | null) => void, options: InvalidationOptions): InvalidationChannel {
    const driver = this.#driver
    if (!(driver instanceof NodeRedisDriver)) throw unsupported(`runs on ${driver.name}`)
    const client = driver.trackingClient()
    if (client === undefined) throw unsupported('runs on a Redis Cluster')
    const channel = new RedisInvalidations(client, this.#prefix, listener, options)
    this.#channels.add(channel)
    return channel
  }

  async close (): Promise<void> {
    for (const channel of this.#channels) await channel.close()
    this.#channels.clear()
    this.#locks.close()
    await this.#driver.close()
  }

  /** With `waitForReplicas`: WAIT for the write just made on this connection to reach them. */
  async #replicated (key: string): Promise<void> {
    const wait = this.#wait
    if (wait === undefined) return
    // WAIT takes no key; the driver's `key` slot carries its first argument.
    const acked = Number(await this.#driver.command('WAIT', String(wait.replicas), [String(wait.timeout)]))
    if (acked < wait.replicas) {
      throw tetherError('TETHER_ERR_WRITE_UNCONFIRMED', `session write to ${key} reached ${acked} of ${wait.replicas} replicas within ${wait.timeout} ms; it is applied on the primary but a failover now could lose it`)
    }
  }

  async #subscribe (): Promise<void> {
    this.#subscribed ??= this.#driver.subscribe(this.#channel, (id) => { this.#locks.released(id) }).catch((err: unknown) => {
      this.#subscribed = undefined
      throw storeUnavailable('RedisStore', err)
    })
    return this.#subscribed
  }

  /** Fail fast while the connection is down, instead of queueing behind a reconnect. */
  #ready (): void {
    const down = this.#driver.unavailable()
    if (down !== undefined) throw this.#down(down)
  }

  #down (state: string): TetherError {
    return tetherError('TETHER_ERR_STORE_UNAVAILABLE', `session store (RedisStore, ${this.#driver.name}) unavailable: connection is ${state}`)
  }
}

/** The driver for a client the app passes, or a new client (its library loaded now) from a URL. */
function openDriver (options: RedisStoreOptions): RedisDriver {
  const commandTimeout = options.commandTimeout ?? 2000
  if (options.client !== undefined) {
    if (isIoredis(options.client)) return new IoredisDriver(options.client)
    if (isNodeRedis(options.client)) return new NodeRedisDriver(options.client, commandTimeout)
    throw tetherError('TETHER_ERR_INVALID_OPTION', "RedisStore option 'client' must be a node-redis v5 or an ioredis client")
  }
  if (options.sentinel !== undefined) {
    const s = options.sentinel
    if (typeof s !== 'object' || s === null || typeof s.name !== 'string' || !Array.isArray(s.sentinels) || s.sentinels.length === 0) {
      throw tetherError('TETHER_ERR_INVALID_OPTION', "RedisStore option 'sentinel' needs a master 'name' and a non-empty 'sentinels' list of { host, port }")
    }
    if (options.driver === 'node-redis') throw tetherError('TETHER_ERR_INVALID_OPTION', "RedisStore option 'sentinel' runs on the ioredis driver; drop driver: 'node-redis'")
    return new IoredisDriver({ sentinel: s, commandTimeout, redisOptions: options.redisOptions, tls: options.tls })
  }
  if (typeof options.url === 'string') {
    const driver = options.driver ?? 'node-redis'
    if (driver === 'ioredis') return new IoredisDriver({ url: options.url, commandTimeout, redisOptions: options.redisOptions, tls: options.tls })
    if (driver === 'node-redis') return new NodeRedisDriver({ url: options.url, commandTimeout, tls: options.tls })
    throw tetherError('TETHER_ERR_INVALID_OPTION', `RedisStore option 'driver' must be 'node-redis' or 'ioredis'; got ${JSON.stringify(driver)}`)
  }
  throw tetherError('TETHER_ERR_INVALID_OPTION', "RedisStore needs a 'client' (node-redis or ioredis), a 'url' (redis:// or rediss://) or a 'sentinel' configuration")
}

/** The write budget: `commandTimeout`, or an ioredis client's own when the app passes one. */
function writeTimeout (options: RedisStoreOptions): number {
  if (options.commandTimeout !== undefined) return options.commandTimeout
  const own = isIoredis(options.client) ? (options.client.options as { commandTimeout?: unknown } | undefined)?.commandTimeout : undefined
  return typeof own === 'number' && own > 0 ? own : 2000
}

function replicaWait (value: RedisStoreOptions['waitForReplicas']): { replicas: number, timeout: number } | undefined {
  if (value === undefined) return undefined
  if (typeof value !== 'object' || value === null || !Number.isSafeInteger(value.replicas) || value.replicas < 1 || !Number.isSafeInteger(value.timeout) || value.timeout < 1) {
    throw tetherError('TETHER_ERR_INVALID_OPTION', "RedisStore option 'waitForReplicas' must be { replicas: a positive integer, timeout: a positive number of ms }")
  }
  return { replicas: value.replicas, timeout: value.timeout }
}

/** An HGETALL reply as a flat [field, value, …] list, whatever the protocol version. */
function pairs (reply: unknown): string[] {
  if (Array.isArray(reply)) return reply as string[]
  if (reply instanceof Map) return [...reply].flat() as string[]
  if (typeof reply === 'object' && reply !== null) return Object.entries(reply).flat() as string[]
  return []
}

/**
 * True for an error reply from the server (node-redis `ErrorReply` and its subclasses, ioredis
 * `ReplyError`): Redis ran the command and refused it, so its outcome is known.
 */
function isErrorReply (err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false
  for (let proto = Object.getPrototypeOf(err) as object | null; proto !== null && proto !== Error.prototype; proto = Object.getPrototypeOf(proto) as object | null) {
    const name = (proto.constructor as { name?: string } | undefined)?.name
    if (name === 'ErrorReply' || name === 'ReplyError') return true
  }
  return false
}
