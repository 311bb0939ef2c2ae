/**
 * RedisStore's invalidation channel for the near-cache: server-assisted client-side caching
 * (`CLIENT TRACKING`) in BCAST mode on the store's key prefix, on a dedicated RESP3 connection.
 *
 * Why BCAST on its own connection rather than default (per-key) tracking on the command
 * connection:
 * - Redis keeps no per-key tracking table for it (only the prefix), so tracking costs Redis no
 *   memory per session, and nothing needs re-reading after a write to stay tracked (in default
 *   mode a write, even with NOLOOP, drops the key from the table);
 * - the command connection stays as it is: any node-redis client the app passes works (RESP2
 *   or 3), and the apply script is untouched;
 * - the price: every change to any session is pushed to every node, so Redis sends
 *   (writes × nodes) small messages, and a node's own writes drop its own copy too (the next
 *   read there costs one load).
 *
 * Liveness: the channel is live only once `CLIENT TRACKING ON BCAST` has been answered on the
 * current connection, and only while a PING sent at most `maxLag` ms ago has been answered.
 * Replies and pushes share the connection in order, so a PING answered means every
 * invalidation of a write acknowledged before the PING was sent has been delivered. Every loss
 * or return of the connection tells the listener `null` (drop everything).
 */
import { tetherError } from '../../errors.js'
import type { InvalidationChannel, InvalidationOptions } from '../../store.js'
import type { NodeRedisClient } from './node-redis.js'

/**
 * @example
 * ```ts
 * const channel = new RedisInvalidations(client.duplicate({ RESP: 3, emitInvalidate: true }), 'tether:sess:', (id) => drop(id), { maxLag: 1000 })
 * ```
 */
export class RedisInvalidations implements InvalidationChannel {
  readonly #client: NodeRedisClient
  readonly #prefix: string
  readonly #listener: (id: string | null) => void
  readonly #maxLag: number
  readonly #timer: NodeJS.Timeout
  /** The connection generation: bumped at every loss, so a late reply of an old one is ignored. */
  #conn = 0
  #tracking = false
  /** Send time of the latest PING (or TRACKING ON) answered on the current connection. */
  #confirmedAt = 0
  #closed = false

  constructor (client: NodeRedisClient, prefix: string, listener: (id: string | null) => void, options: InvalidationOptions) {
    this.#client = client
    this.#prefix = prefix
    this.#listener = listener
    this.#maxLag = options.maxLag
    client.on('invalidate', (key: unknown) => { this.#invalidate(key) })
    client.on('ready', () => { void this.#enable() })
    for (const event of ['error', 'end', 'reconnecting']) client.on(event, () => { this.#lost() })
    this.#timer = setInterval(() => { void this.#ping() }, Math.max(5, Math.floor(this.#maxLag / 4)))
    this.#timer.unref()
    client.connect().catch(() => { this.#lost() })
  }

  live (now: number): boolean {
    return this.#tracking && now - this.#confirmedAt <= this.#maxLag
  }

  /** Idempotent: the session manager and the store may both close it. */
  async close (): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    clearInterval(this.#timer)
    this.#lost()
    try { this.#client.destroy() } catch { /* never connected, or already closed */ }
  }

  #invalidate (key: unknown): void {
    if (key === null || key === undefined) {
      this.#listener(null)
      return
    }
    // `<prefix>{<id>}` (the hash) or `<prefix>{<id>}:lock`: both name session <id>.
    const text = typeof key === 'string' ? key : String(key)
    const open = text.indexOf('{', this.#prefix.length)
    const close = text.indexOf('}', open + 1)
    if (open === -1 || close === -1) return
    this.#listener(text.slice(open + 1, close))
  }

  async #enable (): Promise<void> {
    const conn = ++this.#conn
    this.#tracking = false
    this.#listener(null)
    try {
      const sent = Date.now()
      // The handshake turned default tracking on (that is what makes node-redis route the
      // pushes to 'invalidate'); BCAST is a different mode, which Redis switches to only
      // from OFF. The connection reads no keys, so the default mode tracked nothing.
      await this.#send(['CLIENT', 'TRACKING', 'OFF'])
      await this.#send(['CLIENT', 'TRACKING', 'ON', 'BCAST', 'PREFIX', this.#prefix])
      await this.#send(['CLIENT', 'SETNAME', `tether-near-cache-${process.pid}`])
      if (conn !== this.#conn || this.#closed) return
      // Copies installed before this point were dropped above; from here every change is heard.
      this.#listener(null)
      this.#confirmedAt = sent
      this.#tracking = true
    } catch {
      if (conn === this.#conn) this.#lost()
    }
  }

  #lost (): void {
    this.#conn++
    if (this.#tracking) this.#tracking = false
    this.#listener(null)
  }

  async #ping (): Promise<void> {
    if (!this.#tracking) return
    const conn = this.#conn
    const sent = Date.now()
    try {
      await this.#send(['PING'])
      if (conn === this.#conn && sent > this.#confirmedAt) this.#confirmedAt = sent
    } catch {
      // A PING that fails leaves #confirmedAt to age past maxLag: copies stop being served.
    }
  }

  async #send (args: string[]): Promise<unknown> {
    const send = this.#client.sendCommand as unknown as (a: string[]) => Promise<unknown>
    return await send.call(this.#client, args)
  }
}

/** The error for a RedisStore that cannot give the near-cache an invalidation channel. */
export function unsupported (why: string): Error {
  return tetherError('TETHER_ERR_NEAR_CACHE_UNSUPPORTED', `session option 'nearCache': RedisStore ${why}; the near-cache needs the node-redis client on a standalone Redis (a dedicated RESP3 connection for CLIENT TRACKING). Pass a node-redis client or a url, or turn the near-cache off`)
}
