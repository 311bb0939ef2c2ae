/**
 * The ioredis driver, selectable with `driver: 'ioredis'` or by passing an ioredis client
 * (standalone, Sentinel or Cluster). ioredis is an optional peer dependency: it is loaded
 * only when this driver creates a client from a URL (a client you pass brings its own).
 */
import type { ConnectionOptions } from 'node:tls'
import type { Cluster, Redis, RedisOptions } from 'ioredis'
import { requirePeer } from '../kit/index.js'
import { isNoScript } from './driver.js'
import type { LuaScript, RedisDriver } from './driver.js'

/** Options for an ioredis client the driver creates from a URL. */
export interface IoredisOptions {
  url: string
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
  readonly #client: Redis | Cluster
  readonly #owned: boolean
  #subscriber: Redis | Cluster | undefined

  constructor (source: Redis | Cluster | IoredisOptions) {
    if (isIoredis(source)) {
      this.#client = source
      this.#owned = false
    } else {
      const { Redis } = requirePeer<typeof import('ioredis')>('ioredis', "RedisStore (driver: 'ioredis')")
      this.#client = new Redis(source.url, {
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
      })
      this.#client.on('error', () => {})
      this.#owned = true
    }
  }

  unavailable (): string | undefined {
    const status = this.#client.status
    return status === 'reconnecting' || status === 'close' || status === 'end' ? status : undefined
  }

  async evalScript (script: LuaScript, keys: readonly string[], args: ReadonlyArray<string | number>): Promise<unknown> {
    try {
      return await this.#client.evalsha(script.sha, keys.length, ...keys, ...args)
    } catch (err) {
      if (!isNoScript(err)) throw err
      return await this.#client.eval(script.lua, keys.length, ...keys, ...args)
    }
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
    if (subscriber !== undefined) subscriber.disconnect()
    if (this.#owned) {
      try { await this.#client.quit() } catch { this.#client.disconnect() }
    }
  }
}
