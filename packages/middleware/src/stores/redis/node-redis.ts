/**
 * The node-redis (`@redis/client`) driver, RedisStore's default. Commands go through
 * `sendCommand` with raw arguments: no reply transforms, no per-command wrappers.
 * `@redis/client` is an optional peer dependency: it is loaded only when this driver creates
 * a client from a URL (a client you pass brings its own).
 */
import { performance } from 'node:perf_hooks'
import type { ConnectionOptions } from 'node:tls'
import { requirePeer } from '../kit/index.js'
import { isNoScript, withTimeout } from './driver.js'
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
  /** Reads' own connection (standalone only): see {@link RedisDriver.read}. */
  readonly #reader: NodeRedisClient | undefined
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
    // A second connection for reads: one connection answers in order, so a read sent behind a
    // write that waits (CLIENT PAUSE WRITE) would wait with it. On a cluster each master
    // would need its own; reads share the cluster client there.
    if (!this.#cluster) {
      const reader = this.#reader = this.#client.duplicate()
      reader.on('error', () => {})
      reader.connect().catch(() => {})
    }
  }

  unavailable (): string | undefined {
    if (this.#client.isReady) return undefined
    if (this.#client.isOpen === false && this.#everReady) return 'closed'
    // Before the first connection commands queue (bounded by the command timeout); once it
    // was up, or once connecting failed, a request should get its 503 now.
    return this.#everReady || this.#failing ? 'reconnecting' : undefined
  }

  readUnavailable (): string | undefined {
    return this.#reader?.isReady === true ? undefined : this.unavailable()
  }

  async evalScript (script: LuaScript, keys: readonly string[], args: ReadonlyArray<string | number>, timeoutMs?: number): Promise<unknown> {
    const command: string[] = ['EVALSHA', script.sha, String(keys.length)]
    for (const k of keys) command.push(k)
    for (const a of args) command.push(typeof a === 'string' ? a : String(a))
    // One deadline for the EVALSHA and its EVAL fallback.
    const until = performance.now() + Math.min(timeoutMs ?? this.#timeout, this.#timeout)
    try {
      return await this.#send(this.#client, keys[0], command, until - performance.now())
    } catch (err) {
      if (!isNoScript(err)) throw err
      command[0] = 'EVAL'
      command[1] = script.lua
      return await this.#send(this.#client, keys[0], command, until - performance.now())
    }
  }

  async command (name: string, key: string, args: readonly string[] = []): Promise<unknown> {
    return await this.#send(this.#client, key, [name, key, ...args], this.#timeout)
  }

  async read (name: string, key: string): Promise<unknown> {
    const reader = this.#reader
    return await this.#send(reader?.isReady === true ? reader : this.#client, key, [name, key], this.#timeout)
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
    // The read connection is always this driver's own, also for a client the app passed.
    this.#reader?.destroy()
    if (!this.#owned || this.#client.isOpen === false) return
    // close() waits for the replies of pending commands; a client that is not connected (still
    // retrying, or refused by TLS or auth) has none coming and would wait forever.
    if (!this.#client.isReady) {
      this.#client.destroy()
      return
    }
    try { await this.#client.close() } catch { this.#client.destroy() }
  }

  #send (client: NodeRedisClient, key: string | undefined, args: string[], timeoutMs: number): Promise<unknown> {
    const send = client.sendCommand as unknown as (...a: unknown[]) => Promise<unknown>
    const reply = this.#cluster ? send.call(client, key, false, args) : send.call(client, args)
    // Our own timer rather than node-redis's `timeout` option: in @redis/client 5.12 that one
    // only fires for commands not yet written, so a server that stops answering (SIGSTOP, a
    // stalled network) would hang the request. A timed-out write may still land later.
    return withTimeout(reply, Math.max(0, timeoutMs), args[0] ?? '')
  }
}
