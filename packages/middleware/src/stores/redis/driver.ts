/**
 * What RedisStore needs from a Redis client, and nothing more: run a script by SHA, send one
 * keyed command, subscribe to one channel, say whether the connection is usable right now.
 *
 * Two drivers implement it. node-redis (`@redis/client`) is the default: on this project's
 * benchmark machine it spends about 2 µs of CPU per command against ioredis's 7 µs
 * (`docs/benchmarks.md`). ioredis stays fully supported, for apps that already run it (its
 * Sentinel and Cluster clients included): pass an ioredis client, or `driver: 'ioredis'` with
 * a URL. Each driver loads its library only when it creates a client.
 */
import { createHash } from 'node:crypto'

/** A Lua script and its SHA1, computed once. */
export interface LuaScript {
  readonly lua: string
  readonly sha: string
}

/** Prepare a script for EVALSHA. */
export function luaScript (lua: string): LuaScript {
  return { lua, sha: createHash('sha1').update(lua).digest('hex') }
}

/**
 * @example
 * ```ts
 * const reply = await driver.evalScript(APPLY, [hashKey, lockKey], args)
 * ```
 */
export interface RedisDriver {
  /** `node-redis` or `ioredis`. */
  readonly name: string
  /** True on a Redis Cluster client: keys of different hash tags live on different nodes. */
  readonly cluster: boolean
  /** Why a command would fail right now (fail fast while reconnecting), or undefined. */
  unavailable (): string | undefined
  /**
   * EVALSHA, falling back to EVAL once when the server has not seen the script. `timeoutMs`
   * shortens the command timeout for this call (what is left of a write's budget).
   */
  evalScript (script: LuaScript, keys: readonly string[], args: ReadonlyArray<string | number>, timeoutMs?: number): Promise<unknown>
  /** One command whose first argument after the name is `key` (which routes it on a cluster). */
  command (name: string, key: string, args?: readonly string[]): Promise<unknown>
  /**
   * One read-only command on the read connection: a connection of its own, so reads keep
   * flowing while writes wait (`CLIENT PAUSE … WRITE`, a slow script). Falls back to the main
   * connection while the read connection is not ready, and on a cluster.
   */
  read (name: string, key: string): Promise<unknown>
  /** Like {@link RedisDriver.unavailable}, for {@link RedisDriver.read}. */
  readUnavailable (): string | undefined
  /** Subscribe on a dedicated connection; messages arrive as strings. */
  subscribe (channel: string, onMessage: (message: string) => void): Promise<void>
  /** Close the subscriber, and the client itself when the driver created it. */
  close (): Promise<void>
}

/**
 * `promise`, or a rejection after `ms` (the command may still complete later: for a write,
 * its outcome is then unknown).
 *
 * @example
 * ```ts
 * await withTimeout(client.evalsha(sha, 1, key), 500, 'EVALSHA')
 * ```
 */
export function withTimeout<T> (promise: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`Redis command ${what} timed out after ${Math.round(ms)} ms`)), ms)
    promise.then((value) => { clearTimeout(timer); resolve(value) }, (err: unknown) => { clearTimeout(timer); reject(err) })
  })
}

/** True for the error a server gives an EVALSHA of a script it does not hold. */
export function isNoScript (err: unknown): boolean {
  return err instanceof Error && err.message.startsWith('NOSCRIPT')
}
