/** Turns a store URL into a session store: the only place the app knows which backends exist. */
import { mkdirSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { MemcachedStore, MemoryStore, MySqlStore, PostgresStore, RedisStore, SqliteStore } from '@tether/middleware'
import type { SessionStore } from '@tether/middleware'
import { CounterAppError } from './errors.js'

/**
 * Open the store a URL names: `sqlite:<path>` (directory created if missing), `redis://…`,
 * `rediss://…`, `postgres://…` (schema `counter`), `mysql://…` (table `counter_sessions`),
 * `memcached://host:port[,host:port]` or `memory:`.
 *
 * @example
 * ```ts
 * const store = openStore('sqlite:.tether/sessions.db')
 * ```
 */
export function openStore (url: string): SessionStore {
  try {
    if (url === 'memory:') return new MemoryStore()
    if (url.startsWith('redis://') || url.startsWith('rediss://')) return new RedisStore({ url, prefix: 'counter:sess:' })
    if (url.startsWith('postgres://') || url.startsWith('postgresql://')) return new PostgresStore({ url, schema: 'counter' })
    if (url.startsWith('mysql://')) return new MySqlStore({ url, table: 'counter_sessions' })
    if (url.startsWith('memcached://')) return new MemcachedStore({ url, prefix: 'counter:sess:' })
    if (url.startsWith('sqlite:')) {
      const path = url.slice('sqlite:'.length)
      if (path === ':memory:') return new SqliteStore({ path })
      const file = resolve(path)
      mkdirSync(dirname(file), { recursive: true })
      return new SqliteStore({ path: file })
    }
  } catch (err) {
    throw new CounterAppError('COUNTER_ERR_STORE', `cannot open the session store ${JSON.stringify(url)}: ${(err as Error).message}`, { cause: err })
  }
  throw new CounterAppError('COUNTER_ERR_CONFIG', `unknown store URL ${JSON.stringify(url)}`)
}

/**
 * A short description of a store URL without credentials, for logs and the page.
 *
 * @example
 * ```ts
 * describeStore('redis://:secret@10.0.0.5:6379') // 'redis://10.0.0.5:6379'
 * ```
 */
export function describeStore (url: string): string {
  if (!/^(rediss?|postgres(ql)?|mysql):/.test(url)) return url
  try {
    const u = new URL(url)
    return `${u.protocol}//${u.host}${u.pathname === '/' ? '' : u.pathname}`
  } catch {
    return url.slice(0, url.indexOf(':'))
  }
}
