/**
 * Start-up configuration from flags and environment variables (flags win). Every mistake is
 * reported here, before anything listens, as one line naming the flag and the value.
 */
import { hostname } from 'node:os'
import { parseArgs } from 'node:util'
import { CounterAppError } from './errors.js'

/**
 * Everything the counter-app needs to start.
 *
 * @example
 * ```ts
 * const { port, host } = parseConfig(process.argv.slice(2), process.env) // CounterConfig
 * ```
 */
export interface CounterConfig {
  /** TCP port; 0 picks a free one. */
  readonly port: number
  readonly host: string
  /** The name this node shows on its page and reports to the balancer's health checks. */
  readonly nodeName: string
  /** `sqlite:<path>`, `redis://…`, `rediss://…`, `memcached://…` or `memory:`. */
  readonly store: string
  /** Cookie signing secret; undefined when none was given (the app then makes a random one). */
  readonly secret: string | undefined
  /** Addresses whose X-Forwarded-* headers are believed (the balancer's). */
  readonly trustProxy: readonly string[]
  readonly logLevel: string
  /**
   * On SIGTERM, how long (ms) the node keeps serving while `/health` answers 503, before it
   * closes its port: long enough for the balancer's health checks to take it out
   * (`fall × interval + timeout`), so no request is sent to a port about to close. 0: close at once.
   */
  readonly shutdownDelay: number
}

const USAGE = 'usage: counter-app [--port N] [--host ADDR] [--node-name NAME] [--store sqlite:<path>|redis://…|memcached://…|memory:] [--secret S] [--trust-proxy ip,cidr]'

/**
 * Read the configuration from `argv` (without node and script) and `env`.
 *
 * @example
 * ```ts
 * const config = parseConfig(['--port', '3001', '--store', 'sqlite:./data/sessions.db'], process.env)
 * ```
 */
export function parseConfig (argv: readonly string[], env: NodeJS.ProcessEnv): CounterConfig {
  let flags
  try {
    flags = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        port: { type: 'string' },
        host: { type: 'string' },
        'node-name': { type: 'string' },
        store: { type: 'string' },
        secret: { type: 'string' },
        'trust-proxy': { type: 'string' },
        help: { type: 'boolean' }
      }
    }).values
  } catch (err) {
    throw new CounterAppError('COUNTER_ERR_CONFIG', `${(err as Error).message}; ${USAGE}`)
  }
  if (flags.help === true) throw new CounterAppError('COUNTER_ERR_CONFIG', USAGE)
  const store = flags.store ?? env.STORE_URL ?? env.REDIS_URL ?? 'sqlite:.tether/sessions.db'
  checkStoreUrl(store, flags.store !== undefined ? '--store' : env.STORE_URL !== undefined ? 'STORE_URL' : 'REDIS_URL')
  return {
    port: parsePort(flags.port ?? env.PORT ?? '3000', flags.port !== undefined ? '--port' : 'PORT'),
    host: flags.host ?? env.HOST ?? '127.0.0.1',
    nodeName: flags['node-name'] ?? env.NODE_NAME ?? hostname(),
    store,
    secret: flags.secret ?? env.SESSION_SECRET,
    trustProxy: (flags['trust-proxy'] ?? env.TRUST_PROXY ?? '127.0.0.1,::1').split(',').map((s) => s.trim()).filter((s) => s !== ''),
    logLevel: env.LOG_LEVEL ?? 'info',
    shutdownDelay: parseDelay(env.SHUTDOWN_DELAY ?? '0')
  }
}

/** SHUTDOWN_DELAY: whole milliseconds, at most 10 minutes. */
function parseDelay (value: string): number {
  const ms = /^\d+$/.test(value) ? Number(value) : Number.NaN
  if (!Number.isSafeInteger(ms) || ms > 600_000) {
    throw new CounterAppError('COUNTER_ERR_CONFIG', `SHUTDOWN_DELAY must be a whole number of milliseconds from 0 to 600000; got ${JSON.stringify(value)}`)
  }
  return ms
}

/**
 * A TCP port number, or a COUNTER_ERR_CONFIG error naming `source`.
 *
 * @example
 * ```ts
 * parsePort('8080', '--port') // 8080
 * ```
 */
export function parsePort (value: string, source: string): number {
  const port = /^\d+$/.test(value) ? Number(value) : Number.NaN
  if (!Number.isInteger(port) || port < 0 || port > 65_535) {
    throw new CounterAppError('COUNTER_ERR_CONFIG', `${source} must be an integer from 0 to 65535; got ${JSON.stringify(value)}`)
  }
  return port
}

/**
 * Refuse a store URL of an unknown kind, naming `source` and the kinds that work.
 *
 * @example
 * ```ts
 * checkStoreUrl('sqlite:/var/lib/app/sessions.db', '--store') // ok
 * checkStoreUrl('mongodb://db', '--store') // throws COUNTER_ERR_CONFIG
 * ```
 */
export function checkStoreUrl (url: string, source: string): void {
  const ok = (/^sqlite:.+/.test(url)) || url === 'memory:' || /^(rediss?|postgres(ql)?|mysql):\/\/[^/\s]+/.test(url) || /^memcached:\/\/[^/\s]+$/.test(url)
  if (!ok) {
    throw new CounterAppError('COUNTER_ERR_CONFIG', `${source} must be sqlite:<path>, redis://host:port, rediss://host:port, postgres://host/db, mysql://host/db, memcached://host:port or memory:; got ${JSON.stringify(url)}`)
  }
}
