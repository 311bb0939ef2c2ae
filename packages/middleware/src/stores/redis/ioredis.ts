/**
 * The ioredis driver, selectable with `driver: 'ioredis'` or by passing an ioredis client
 * (standalone, Sentinel or Cluster). ioredis is an optional peer dependency: it is loaded
 * only when this driver creates a client from a URL (a client you pass brings its own).
 */
import { performance } from 'node:perf_hooks'
import type { ConnectionOptions } from 'node:tls'
import type { Cluster, Redis, RedisOptions } from 'ioredis'
import { requirePeer } from '../kit/index.js'
import { isNoScript, withTimeout } from './driver.js'
import type { LuaScript, RedisDriver } from './driver.js'

/**
 * A Sentinel-managed primary: the sentinels to ask and the name they monitor it under.
 *
 * @example
 * ```ts
 * const sentinel: SentinelOptions = { name: 'mymaster', sentinels: [{ host: '10.0.0.1', port: 26379 }, { host: '10.0.0.2', port: 26379 }] }
 * ```
 */
export interface SentinelOptions {
  /** The master name in the sentinels' `sentinel monitor <name> …` lines. */
  name: string
  /** Sentinels to ask for the current primary (any one that answers will do; list them all). */
  sentinels: Array<{ host: string, port: number }>
  /** Password of the sentinels themselves, when they require one. */
  sentinelPassword?: string
  /** ACL user and password of the Redis servers. */
  username?: string
  password?: string
}

/** Options for an ioredis client the driver creates from a URL or a Sentinel configuration. */
export interface IoredisOptions {
  /** `redis://…`; ignored with `sentinel`. */
  url?: string | undefined
  sentinel?: SentinelOptions | undefined
  commandTimeout: number
  redisOptions?: RedisOptions | undefined
  /** TLS options (a private CA, client certificates) for a `rediss://` URL. */
  tls?: ConnectionOptions | undefined
}

/** True when `client` is an ioredis Redis or Cluster. */
export function isIoredis (client: unknown): client is Redis | Cluster {
  return typeof client === 'object' && client !== null && typeof (client as { defineCommand?: unknown }).defineCommand === 'function'
}

/**
 * @example
 * ```ts
 * const driver = new IoredisDriver(new Redis({ commandTimeout: 2000 }))
 * ```
 */
export class IoredisDriver implements RedisDriver {
  readonly name = 'ioredis'
  /** True on an ioredis `Cluster`. */
  get cluster (): boolean { return (this.#client as { isCluster?: boolean }).isCluster === true }
  readonly #client: Redis | Cluster
  readonly #owned: boolean
  #subscriber: Redis | Cluster | undefined
  /** Reads' own connection: see {@link RedisDriver.read}. */
  readonly #reader: Redis | Cluster

  constructor (source: Redis | Cluster | IoredisOptions) {
    if (isIoredis(source)) {
      this.#client = source
      this.#owned = false
    } else {
      const { Redis } = requirePeer<typeof import('ioredis')>('ioredis', "RedisStore (driver: 'ioredis')")
      const common: RedisOptions = {
        commandTimeout: source.commandTimeout,
        connectTimeout: 2000,
        // Fail queued commands when a connection attempt fails instead of retrying them: a
        // request must get its 503 now, not after Redis has been back for a while.
        maxRetriesPerRequest: 0,
        // Commands issued in the same tick share one socket write.
        enableAutoPipelining: true,
        retryStrategy: (attempt) => Math.min(50 * attempt, 1000),
        ...(source.tls === undefined ? {} : { tls: source.tls }),
        ...source.redisOptions
      }
      const sentinel = source.sentinel
      this.#client = sentinel === undefined
        ? new Redis(source.url ?? '', common)
        : new Redis({
          ...common,
          name: sentinel.name,
          sentinels: sentinel.sentinels,
          ...(sentinel.sentinelPassword === undefined ? {} : { sentinelPassword: sentinel.sentinelPassword }),
          ...(sentinel.username === undefined ? {} : { username: sentinel.username }),
          ...(sentinel.password === undefined ? {} : { password: sentinel.password }),
          // Ask the sentinels again soon after a failure: the new primary is known seconds
          // after a failover, and until then commands fail fast (maxRetriesPerRequest 0).
          sentinelRetryStrategy: (attempt: number) => Math.min(100 * attempt, 1000),
          // No `failoverDetector`: its sentinel subscriptions outlive disconnect() in ioredis
          // 5.9 and keep reconnecting to sentinels that are gone. A failover is still followed:
          // the primary's connection drops, and the reconnect asks the sentinels.
          // A primary demoted to replica answers writes with READONLY: reconnect, which asks
          // the sentinels for the new primary.
          reconnectOnError: (err) => err.message.startsWith('READONLY') ? 2 : false
        })
      this.#client.on('error', () => {})
      this.#owned = true
    }
    // A second connection (or cluster client) for reads, with the same options (a Sentinel
    // one follows failovers too): one connection answers in order, so a read sent behind a
    // write that waits (CLIENT PAUSE WRITE) would wait with it.
    this.#reader = this.#client.duplicate()
    this.#reader.on('error', () => {})
    if (this.#reader.status === 'wait') this.#reader.connect().catch(() => {})
  }

  unavailable (): string | undefined {
    const status = this.#client.status
    return status === 'reconnecting' || status === 'close' || status === 'end' ? status : undefined
  }

  readUnavailable (): string | undefined {
    return this.#reader.status === 'ready' ? undefined : this.unavailable()
  }

  async evalScript (script: LuaScript, keys: readonly string[], args: ReadonlyArray<string | number>, timeoutMs?: number): Promise<unknown> {
    // ioredis bounds each command by its own `commandTimeout`; a shorter budget gets a timer.
    const bound = <T>(p: Promise<T>, until: number): Promise<T> => timeoutMs === undefined ? p : withTimeout(p, Math.max(0, until - performance.now()), 'EVALSHA')
    const until = performance.now() + (timeoutMs ?? 0)
    try {
      return await bound(this.#client.evalsha(script.sha, keys.length, ...keys, ...args), until)
    } catch (err) {
      if (!isNoScript(err)) throw err
      return await bound(this.#client.eval(script.lua, keys.length, ...keys, ...args), until)
    }
  }

  async read (name: string, key: string): Promise<unknown> {
    const client = this.#reader.status === 'ready' ? this.#reader : this.#client
    return await client.call(name, key)
  }

  async command (name: string, key: string, args: readonly string[] = []): Promise<unknown> {
    return await this.#client.call(name, key, ...args)
  }

  async subscribe (channel: string, onMessage: (message: string) => void): Promise<void> {
    const subscriber = this.#client.duplicate()
    subscriber.on('error', () => {})
    subscriber.on('message', (_channel: string, message: string) => onMessage(message))
    this.#subscriber = subscriber
    await subscriber.subscribe(channel)
  }

  async close (): Promise<void> {
    const subscriber = this.#subscriber
    this.#subscriber = undefined
    if (subscriber !== undefined) disconnectQuietly(subscriber)
    // The read connection is always this driver's own, also for a client the app passed.
    disconnectQuietly(this.#reader)
    if (this.#owned) {
      // QUIT waits for a reply that a client still reconnecting will never get.
      if (this.#client.status !== 'ready') {
        disconnectQuietly(this.#client)
        return
      }
      try { await this.#client.quit() } catch { disconnectQuietly(this.#client) }
    }
  }
}

/**
 * Disconnect a client that may be in the middle of a TLS handshake. ioredis stops listening to
 * its socket when it disconnects, and a TLS socket cut mid-handshake can still report the
 * server's alert afterwards: with no listener left, that error would crash the process (seen:
 * `tlsv1 alert decode error`, about 1 in 3 disconnects of a client connecting to a server whose
 * certificate it refuses). The socket gets a listener of its own first.
 */
function disconnectQuietly (client: Redis | Cluster): void {
  const stream = (client as { stream?: { on?: (event: string, listener: () => void) => unknown } }).stream
  stream?.on?.('error', () => {})
  client.disconnect()
}
