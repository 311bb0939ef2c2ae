/**
 * The node-redis (`@redis/client`) driver, RedisStore's default. Commands go through
 * `sendCommand` with raw arguments: no reply transforms, no per-command wrappers.
 * `@redis/client` is an optional peer dependency: it is loaded only when this driver creates
 * a client from a URL (a client you pass brings its own).
 */
import type { ConnectionOptions } from 'node:tls'
import { requirePeer } from '../kit/index.js'
import { isNoScript } from './driver.js'
import type { LuaScript, RedisDriver } from './driver.js'

/**
 * The part of a node-redis client (`createClient()` or `createCluster()`, from `redis` or
 * `@redis/client`) the driver uses. Declared structurally so any v5 client fits.
 */
export interface NodeRedisClient {
  isReady: boolean
  isOpen?: boolean
  on (event: string, listener: (...args: unknown[]) => void): unknown
  duplicate (overrides?: Record<string, unknown>): NodeRedisClient
  connect (): Promise<unknown>
  subscribe (channel: string, listener: (message: string) => void): Promise<unknown>
  close (): Promise<unknown>
  destroy (): unknown
  // Standalone: sendCommand(args). Cluster: sendCommand(firstKey, isReadonly, args).
  sendCommand: (...args: never[]) => Promise<unknown>
}

/** Options for a client the driver creates from a URL. */
export interface NodeRedisOptions {
  url: string
  commandTimeout: number
  /** TLS options (a private CA, client certificates) for a `rediss://` URL. */
  tls?: ConnectionOptions | undefined
}

/** True when `client` looks like a node-redis v5 client or cluster. */
export function isNodeRedis (client: unknown): client is NodeRedisClient {
  const c = client as Partial<NodeRedisClient> | null
  return typeof c === 'object' && c !== null && typeof c.sendCommand === 'function' && typeof c.duplicate === 'function' && !('defineCommand' in c)
}

/**
 * @example
 * ```ts
 * const driver = new NodeRedisDriver({ url: 'redis://127.0.0.1:6379', commandTimeout: 2000 })
 * ```
 */
export class NodeRedisDriver implements RedisDriver {
  readonly name = 'node-redis'
  readonly #client: NodeRedisClient
  readonly #owned: boolean
  readonly #cluster: boolean
  /** True on a cluster client (`createCluster()`). */
  get cluster (): boolean { return this.#cluster }
  readonly #timeout: number
  #subscriber: NodeRedisClient | undefined
  #everReady = false
  #failing = false

  constructor (source: NodeRedisClient | NodeRedisOptions, commandTimeout: number = 2000) {
    this.#timeout = isNodeRedis(source) ? commandTimeout : source.commandTimeout
    if (isNodeRedis(source)) {
      this.#client = source
      this.#owned = false
      this.#everReady = source.isReady
    } else {
      const socket = { connectTimeout: 2000, reconnectStrategy: (retries: number) => Math.min(50 * (retries + 1), 1000) }
      const { createClient } = requirePeer<typeof import('@redis/client')>('@redis/client', 'RedisStore')
      this.#client = createClient({
        url: source.url,
        socket: source.tls === undefined ? socket : { ...socket, ...source.tls, tls: true }
      }) as unknown as NodeRedisClient
      this.#owned = true
    }
    // A cluster client routes by key and takes (firstKey, isReadonly, args).
    this.#cluster = typeof (this.#client as { masters?: unknown }).masters !== 'undefined'
    this.#client.on('ready', () => { this.#everReady = true; this.#failing = false })
    // Errors surface on the commands that meet them; the listener keeps a failed reconnect
    // from becoming an unhandled 'error' event.
    this.#client.on('error', () => { this.#failing = true })
    if (this.#owned) this.#client.connect().catch(() => { this.#failing = true })
  }

  unavailable (): string | undefined {
    if (this.#client.isReady) return undefined
    if (this.#client.isOpen === false && this.#everReady) return 'closed'
    // Before the first connection commands queue (bounded by the command timeout); once it
    // was up, or once connecting failed, a request should get its 503 now.
    return this.#everReady || this.#failing ? 'reconnecting' : undefined
  }

  async evalScript (script: LuaScript, keys: readonly string[], args: ReadonlyArray<string | number>): Promise<unknown> {
    const command: string[] = ['EVALSHA', script.sha, String(keys.length)]
    for (const k of keys) command.push(k)
    for (const a of args) command.push(typeof a === 'string' ? a : String(a))
    try {
      return await this.#send(keys[0], command)
    } catch (err) {
      if (!isNoScript(err)) throw err
      command[0] = 'EVAL'
      command[1] = script.lua
      return await this.#send(keys[0], command)
    }
  }

  async command (name: string, key: string, args: readonly string[] = []): Promise<unknown> {
    return await this.#send(key, [name, key, ...args])
  }

  /**
   * A new, unconnected RESP3 connection to the same server with invalidation pushes enabled
   * (emitted as 'invalidate'), for the near-cache's tracking channel; undefined on a cluster,
   * where BCAST tracking would need one connection per master.
   */
  trackingClient (): NodeRedisClient | undefined {
    if (this.#cluster) return undefined
    const client = this.#client.duplicate({ RESP: 3, emitInvalidate: true })
    client.on('error', () => {})
    return client
  }

  async subscribe (channel: string, onMessage: (message: string) => void): Promise<void> {
    const subscriber = this.#client.duplicate()
    subscriber.on('error', () => {})
    this.#subscriber = subscriber
    await subscriber.connect()
    await subscriber.subscribe(channel, onMessage)
  }

  async close (): Promise<void> {
    const subscriber = this.#subscriber
    this.#subscriber = undefined
    if (subscriber !== undefined) subscriber.destroy()
    if (!this.#owned || this.#client.isOpen === false) return
    // close() waits for the replies of pending commands; a client that is not connected (still
    // retrying, or refused by TLS or auth) has none coming and would wait forever.
    if (!this.#client.isReady) {
      this.#client.destroy()
      return
    }
    try { await this.#client.close() } catch { this.#client.destroy() }
  }

  #send (key: string | undefined, args: string[]): Promise<unknown> {
    const send = this.#client.sendCommand as unknown as (...a: unknown[]) => Promise<unknown>
    const reply = this.#cluster ? send.call(this.#client, key, false, args) : send.call(this.#client, args)
    // Our own timer rather than node-redis's `timeout` option: in @redis/client 5.12 that one
    // only fires for commands not yet written, so a server that stops answering (SIGSTOP, a
    // stalled network) would hang the request. A timed-out write may still land later.
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`Redis command ${args[0]} timed out after ${this.#timeout} ms`)), this.#timeout)
      reply.then((value) => { clearTimeout(timer); resolve(value) }, (err: unknown) => { clearTimeout(timer); reject(err) })
    })
  }
}
