/**
 * What MemcachedStore needs from a memcached client, and nothing more: `gets`, `add`, `cas`,
 * each as a promise with its own timeout.
 *
 * The client is `memcached` (3rd-Eden, the library connect-memcached runs on), an optional
 * peer dependency loaded when the store is constructed. It was chosen over `memjs` because
 * the store's whole write path is compare-and-swap, and memjs 1.3.2 has no CAS: its GET drops
 * the CAS value and its SET says "TODO: support version (CAS)". `memcached` has `gets`/`cas`,
 * shards over several servers by consistent hashing, and round-trips 600 KB of multi-byte
 * UTF-8 exactly (probed before choosing it; the conformance suite keeps checking it).
 *
 * Its `cas` answers `false` both when another writer got there first (EXISTS) and when the
 * item is gone (NOT_FOUND); the store tells them apart by reading again, which it does before
 * any retry anyway.
 */
import type Memcached from 'memcached'
import { requirePeer } from '../kit/index.js'

/** An item as `gets` returns it: its value and the CAS unique that a `cas` must present. */
export interface CasItem {
  readonly value: string
  readonly cas: string
}

/** Options for a client the driver creates. */
export interface MemcachedClientOptions {
  /** `host:port` of each server (keys are spread over them by consistent hashing). */
  servers: string[]
  /** Per-command timeout (ms). */
  commandTimeout: number
  /** Largest item (bytes) the client sends; the server's `-I` limit (default 1 MiB). */
  maxValue: number
}

/**
 * @example
 * ```ts
 * const driver = new MemcachedDriver({ servers: ['127.0.0.1:11211'], commandTimeout: 2000, maxValue: 1_048_576 })
 * const item = await driver.gets('sess:abc')
 * ```
 */
export class MemcachedDriver {
  readonly #client: Memcached
  readonly #owned: boolean
  readonly #timeout: number

  constructor (source: Memcached | MemcachedClientOptions, commandTimeout = 2000) {
    if (isMemcachedClient(source)) {
      this.#client = source
      this.#owned = false
      this.#timeout = commandTimeout
      return
    }
    const Client = requirePeer<typeof Memcached>('memcached', 'MemcachedStore')
    this.#timeout = source.commandTimeout
    // `failuresTimeout` is a real option of the library that its type declarations omit.
    const options: Memcached.options & { failuresTimeout: number } = {
      timeout: source.commandTimeout,
      maxValue: source.maxValue,
      // A failed server is skipped for `retry` ms, then tried again, for ever: a session store
      // must come back within a second of its server. The library's defaults skip it for 30 s
      // and, after 5 failures, switch to a reconnect loop that probes the host by spawning the
      // system's `ping` (ICMP says nothing about memcached, and where `ping` is not installed
      // the spawn's error event is unhandled and kills the process). A failure budget that
      // never runs out keeps that loop from ever starting.
      retries: 1,
      retry: 1000,
      failures: Number.MAX_SAFE_INTEGER,
      failuresTimeout: 1000,
      remove: false,
      idle: 0
    }
    this.#client = new Client(source.servers, options)
    this.#owned = true
  }

  /** The item and its CAS unique, or undefined when memcached does not hold it. */
  async gets (key: string): Promise<CasItem | undefined> {
    const data = await this.#call<Record<string, unknown> | undefined>('gets', (cb) => this.#client.gets(key, cb as never))
    if (data === undefined || data === null || typeof data !== 'object') return undefined
    const value = data[key]
    const cas = data.cas
    if (typeof value !== 'string' || (typeof cas !== 'string' && typeof cas !== 'number')) return undefined
    return { value, cas: String(cas) }
  }

  /**
   * Several items' values in one round trip (the keys may live on different servers: the
   * library asks each once). Keys memcached does not hold are absent from the result.
   */
  async getMulti (keys: string[]): Promise<Map<string, string>> {
    const data = await this.#call<Record<string, unknown> | undefined>('get', (cb) => this.#client.getMulti(keys, cb as never))
    const out = new Map<string, string>()
    for (const key of keys) {
      const value = data?.[key]
      if (typeof value === 'string') out.set(key, value)
    }
    return out
  }

  /** Store only if the key is absent. False when it exists (NOT_STORED). */
  async add (key: string, value: string, exptime: number): Promise<boolean> {
    try {
      return await this.#call<boolean>('add', (cb) => this.#client.add(key, value, exptime, cb as never)) === true
    } catch (err) {
      if ((err as { notStored?: boolean }).notStored === true) return false
      throw err
    }
  }

  /** Store only if the item is unchanged since `gets` gave `cas`. False otherwise (or gone). */
  async cas (key: string, value: string, cas: string, exptime: number): Promise<boolean> {
    return await this.#call<boolean>('cas', (cb) => this.#client.cas(key, value, cas, exptime, cb as never)) === true
  }

  /** Close the connections, when the driver opened them. */
  close (): void {
    if (this.#owned) this.#client.end()
  }

  #call<T> (name: string, run: (cb: (err: unknown, result: T) => void) => void): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      // Our own timer: the library's `timeout` bounds connecting, not a reply that never comes.
      const timer = setTimeout(() => reject(Object.assign(new Error(`memcached ${name} timed out after ${this.#timeout} ms`), { unanswered: true })), this.#timeout)
      run((err, result) => {
        clearTimeout(timer)
        if (err !== undefined && err !== null) reject(Array.isArray(err) ? err[0] : err)
        else resolve(result)
      })
    })
  }
}

/**
 * True for a failure after which a command may have reached the server and run there: no answer
 * in time (our timer), or the connection broke (reset, broken pipe). False for the library's own
 * refusals before sending (value too large, server marked dead) and for the server's error
 * replies: those stored nothing.
 *
 * @example
 * ```ts
 * try { await driver.cas(key, value, cas, ttl) } catch (err) { if (mayHaveRun(err)) outcomeUnknown() }
 * ```
 */
export function mayHaveRun (err: unknown): boolean {
  const e = err as { unanswered?: unknown, code?: unknown } | null
  if (typeof e !== 'object' || e === null) return false
  return e.unanswered === true || e.code === 'ECONNRESET' || e.code === 'EPIPE' || e.code === 'ETIMEDOUT'
}

/** True when `client` looks like a `memcached` client instance. */
export function isMemcachedClient (client: unknown): client is Memcached {
  const c = client as { gets?: unknown, cas?: unknown } | null
  return typeof c === 'object' && c !== null && typeof c.gets === 'function' && typeof c.cas === 'function'
}
