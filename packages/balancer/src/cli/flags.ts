/**
 * Command-line flags for the simple case, without a file:
 *
 *   tether-balancer --listen 8080 --upstream http://127.0.0.1:3001 \
 *     --upstream http://127.0.0.1:3002,weight=3 --algorithm least-connections
 *
 * With `--config`, flags override the file's values and `--upstream` replaces its list.
 */
import { TetherBalancerError } from '../errors.js'

/** What the command line asks for. */
export interface CliOptions {
  readonly configFile: string | undefined
  /** Configuration fragments from flags, applied over the file (if any). */
  readonly overrides: Record<string, unknown>
  /** Validate the configuration, print it, and exit. */
  readonly check: boolean
  readonly help: boolean
  readonly version: boolean
}

/** The text of `--help`. */
export const USAGE = `Usage: tether-balancer [--config FILE] [options]

A sticky-aware HTTP load balancer. Flags override the config file.

  -c, --config FILE            YAML or JSON configuration (reloaded on SIGHUP)
  -l, --listen [HOST:]PORT     where to listen (default 8080, all interfaces)
  -u, --upstream URL[,OPTS]    an upstream node; repeat for more. OPTS, comma-separated:
                               name=N weight=N maxFails=N failTimeout=10s backup state=drain|maint
  -a, --algorithm NAME         weighted-round-robin (default) | least-connections | ip-hash
      --engine NAME            h1 (default) | undici | http-proxy
      --no-sticky              no sticky cookie
      --cookie NAME            sticky cookie name (default tether_node)
      --sticky-secret SECRET   HMAC key for the sticky cookie (or TETHER_STICKY_SECRET)
      --health-check PATH      active health checks: GET PATH on every node
      --health-interval DUR    time between checks (default 2s)
      --retries N              further nodes to try after a safe-to-retry failure (default 2)
      --trusted-proxy CIDR     believe X-Forwarded-* from this peer; repeat for more
      --admin [HOST:]PORT      admin API and status page (bare port: 127.0.0.1)
      --admin-token TOKEN      require this bearer token (or TETHER_ADMIN_TOKEN)
      --log-level LEVEL        fatal | error | warn | info (default) | debug | trace | silent
      --access-log             one log line per request
      --check                  validate the configuration, print it resolved, and exit
  -h, --help                   this text
  -v, --version                the version

Signals: SIGHUP reloads the configuration without dropping connections; SIGTERM and SIGINT
stop accepting and finish in-flight requests within timeouts.shutdown.
Exit status: 0 on a clean stop, 1 on a runtime failure, 2 on a configuration or usage error.`

const ALIASES: Record<string, string> = { '-c': '--config', '-l': '--listen', '-u': '--upstream', '-a': '--algorithm', '-h': '--help', '-v': '--version' }
const BOOLEAN = new Set(['--no-sticky', '--access-log', '--check', '--help', '--version'])
const VALUED = new Set([
  '--config', '--listen', '--upstream', '--algorithm', '--engine', '--cookie', '--sticky-secret', '--health-check',
  '--health-interval', '--retries', '--trusted-proxy', '--admin', '--admin-token', '--log-level'
])

function usage (message: string): TetherBalancerError {
  return new TetherBalancerError('TETHER_ERR_CLI_USAGE', `${message} (see --help)`)
}

/** A listen value: numbers stay numbers so that the config validator sees a port. */
function listenValue (text: string): number | string {
  return /^\d+$/.test(text) ? Number(text) : text
}

function intValue (flag: string, key: string, text: string): number {
  if (!/^-?\d+$/.test(text)) throw usage(`${flag}: ${key} must be an integer, got ${JSON.stringify(text)}`)
  return Number(text)
}

/**
 * Parse one `--upstream` value: a URL, then comma-separated options.
 *
 * @example
 * ```ts
 * parseUpstreamFlag('http://127.0.0.1:3002,weight=3,backup')
 * // { url: 'http://127.0.0.1:3002', weight: 3, backup: true }
 * ```
 */
export function parseUpstreamFlag (value: string): Record<string, unknown> {
  const [url = '', ...options] = value.split(',')
  const upstream: Record<string, unknown> = { url }
  for (const option of options) {
    const eq = option.indexOf('=')
    const key = eq === -1 ? option : option.slice(0, eq)
    const text = eq === -1 ? undefined : option.slice(eq + 1)
    switch (key) {
      case 'backup':
        if (text !== undefined && text !== 'true' && text !== 'false') throw usage(`--upstream ${value}: backup takes no value (or true/false)`)
        upstream.backup = text !== 'false'
        break
      case 'weight': case 'maxFails':
        if (text === undefined) throw usage(`--upstream ${value}: ${key} needs a value, such as ${key}=3`)
        upstream[key] = intValue('--upstream', key, text)
        break
      case 'name': case 'failTimeout': case 'state':
        if (text === undefined) throw usage(`--upstream ${value}: ${key} needs a value`)
        upstream[key] = key === 'failTimeout' && /^\d+$/.test(text) ? Number(text) : text
        break
      default:
        throw usage(`--upstream ${value}: unknown option ${JSON.stringify(key)} (known: name, weight, maxFails, failTimeout, backup, state)`)
    }
  }
  return upstream
}

/**
 * Parse the command line (without `node` and the script).
 *
 * @example
 * ```ts
 * parseFlags(['--listen', '8080', '--upstream', 'http://127.0.0.1:3001'])
 * // { configFile: undefined, overrides: { listen: 8080, upstreams: [{ url: 'http://127.0.0.1:3001' }] }, … }
 * ```
 */
export function parseFlags (argv: readonly string[], env: Readonly<Record<string, string | undefined>> = {}): CliOptions {
  const o: Record<string, unknown> = {}
  const upstreams: Record<string, unknown>[] = []
  const trusted: string[] = []
  const sticky: Record<string, unknown> = {}
  const health: Record<string, unknown> = {}
  const admin: Record<string, unknown> = {}
  const log: Record<string, unknown> = {}
  let configFile: string | undefined
  let check = false
  let help = false
  let version = false

  for (let i = 0; i < argv.length; i++) {
    let arg = argv[i] as string
    let value: string | undefined
    const eq = arg.startsWith('--') ? arg.indexOf('=') : -1
    if (eq !== -1) { value = arg.slice(eq + 1); arg = arg.slice(0, eq) }
    arg = ALIASES[arg] ?? arg
    if (BOOLEAN.has(arg)) {
      if (value !== undefined) throw usage(`${arg} takes no value`)
    } else if (VALUED.has(arg)) {
      if (value === undefined) {
        value = argv[++i]
        if (value === undefined || (value.startsWith('-') && value.length > 1 && !/^-\d/.test(value))) throw usage(`${arg} needs a value`)
      }
    } else {
      throw usage(arg.startsWith('-') ? `unknown flag ${arg}` : `unexpected argument ${JSON.stringify(arg)}`)
    }
    const v = value as string
    switch (arg) {
      case '--config': configFile = v; break
      case '--listen': o.listen = listenValue(v); break
      case '--upstream': upstreams.push(parseUpstreamFlag(v)); break
      case '--algorithm': o.algorithm = v; break
      case '--engine': o.engine = v; break
      case '--no-sticky': sticky.enabled = false; break
      case '--cookie': sticky.cookie = v; break
      case '--sticky-secret': sticky.secret = v; break
      case '--health-check': health.enabled = true; health.path = v; break
      case '--health-interval': health.interval = /^\d+$/.test(v) ? Number(v) : v; break
      case '--retries': o.retries = intValue('--retries', 'the value', v); break
      case '--trusted-proxy': trusted.push(v); break
      case '--admin': admin.listen = listenValue(v); break
      case '--admin-token': admin.token = v; break
      case '--log-level': log.level = v; break
      case '--access-log': log.accessLog = true; break
      case '--check': check = true; break
      case '--help': help = true; break
      case '--version': version = true; break
    }
  }
  if (sticky.secret === undefined && env.TETHER_STICKY_SECRET !== undefined && env.TETHER_STICKY_SECRET !== '') sticky.secret = env.TETHER_STICKY_SECRET
  if (admin.token === undefined && env.TETHER_ADMIN_TOKEN !== undefined && env.TETHER_ADMIN_TOKEN !== '' && admin.listen !== undefined) admin.token = env.TETHER_ADMIN_TOKEN
  if (upstreams.length > 0) o.upstreams = upstreams
  if (trusted.length > 0) o.trustedProxies = trusted
  if (Object.keys(sticky).length > 0) o.sticky = sticky
  if (Object.keys(health).length > 0) o.healthCheck = health
  if (Object.keys(admin).length > 0) o.admin = admin
  if (Object.keys(log).length > 0) o.log = log
  if (!help && !version && configFile === undefined && upstreams.length === 0) {
    throw usage('give --config FILE or at least one --upstream URL')
  }
  return { configFile, overrides: o, check, help, version }
}

/**
 * Apply flag overrides over a file's configuration: scalars replace, sections merge one level
 * deep, `upstreams` and `trustedProxies` replace the file's lists.
 *
 * @example
 * ```ts
 * mergeConfig({ listen: 80, log: { level: 'info' } }, { log: { accessLog: true } })
 * // { listen: 80, log: { level: 'info', accessLog: true } }
 * ```
 */
export function mergeConfig (base: unknown, overrides: Record<string, unknown>): unknown {
  if (typeof base !== 'object' || base === null || Array.isArray(base)) return Object.keys(overrides).length > 0 ? overrides : base
  const out: Record<string, unknown> = { ...(base as Record<string, unknown>) }
  for (const [key, value] of Object.entries(overrides)) {
    const prev = out[key]
    const mergeable = typeof value === 'object' && value !== null && !Array.isArray(value) &&
      typeof prev === 'object' && prev !== null && !Array.isArray(prev)
    out[key] = mergeable ? { ...(prev as Record<string, unknown>), ...(value as Record<string, unknown>) } : value
  }
  return out
}
