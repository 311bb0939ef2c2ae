/**
 * Client libraries are optional peer dependencies, loaded by the store that uses them when it
 * first needs them, never on import: an app on SQLite neither installs nor loads a Redis
 * client, and the reverse.
 *
 * `require` (through createRequire) rather than `import()`: every client library a store
 * uses is CommonJS, and a synchronous load keeps store constructors synchronous.
 */
import { createRequire } from 'node:module'
import { tetherError } from '../../errors.js'

const require = createRequire(import.meta.url)

/**
 * Load the optional peer dependency `name` for `store`. Throws `TETHER_ERR_DEPENDENCY_MISSING`,
 * naming the package and the command that installs it, when it is absent or fails to load.
 * `native` packages get the rebuild hint too (a Node upgrade breaks their addon).
 *
 * @example
 * ```ts
 * const { createClient } = requirePeer<typeof import('@redis/client')>('@redis/client', 'RedisStore')
 * ```
 */
export function requirePeer<T> (name: string, store: string, options: { native?: boolean } = {}): T {
  try {
    return require(name) as T
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    const detail = err instanceof Error ? err.message : String(err)
    const why = code === 'MODULE_NOT_FOUND' || code === 'ERR_MODULE_NOT_FOUND'
      ? 'it is not installed'
      : `it failed to load (${detail})${options.native === true ? `; its native addon may need a rebuild: npm rebuild ${name}` : ''}`
    throw tetherError('TETHER_ERR_DEPENDENCY_MISSING', `${store} needs the optional peer dependency ${name}, but ${why}. Install it with: npm install ${name}`, { cause: err })
  }
}
