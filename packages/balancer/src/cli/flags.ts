/**
 * Command-line flags for the simple case, without a file:
 *
 *   tether-balancer --listen 8080 --upstream http://127.0.0.1:3001 \
 *     --upstream http://127.0.0.1:3002,weight=3 --algorithm least-connections
 *
 * The flags are declared on the configuration fields they set (`config/schema.ts`) and parsed
 * with `node:util`'s `parseArgs`; `--help` is generated from the same declarations. With
 * `--config`, flags override the file's values and `--upstream` replaces its list.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util'
import { TetherBalancerError } from '../errors.js'
import { formatDuration, type FieldKind, type FlagInfo } from '../config/fields.js'
import { configSchema, upstreamFields } from '../config/schema.js'
import { fieldsOf, type DeclaredField } from '../config/walk.js'

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

/** Flags that are not configuration fields. */
const COMMAND_FLAGS = [
  { name: 'config', short: 'c', arg: 'FILE', help: 'YAML or JSON configuration (reloaded on SIGHUP)' },
  { name: 'check', help: 'validate the configuration, print it resolved, and exit' },
  { name: 'help', short: 'h', help: 'this text' },
  { name: 'version', short: 'v', help: 'the version' }
] as const

const FIELDS = fieldsOf(configSchema)
/** The configuration fields that have a flag, in declaration order. */
const FLAGGED: ReadonlyArray<{ readonly field: DeclaredField, readonly flag: FlagInfo }> =
  FIELDS.flatMap((field) => field.info.flag === undefined ? [] : [{ field, flag: field.info.flag }])
/** `--upstream`'s options: an upstream's fields other than its URL. */
// Scalar fields only: a node's `tls` section is for the file (the flag `--upstream-ca` sets the CA for all).
const UPSTREAM_OPTIONS = fieldsOf(upstreamFields).filter((f) => f.path[0] !== 'url' && f.path.length === 1 && f.info.kind !== 'section')

const OPTIONS: NonNullable<ParseArgsConfig['options']> = Object.fromEntries([
  ...COMMAND_FLAGS.map((f) => [f.name, { type: 'arg' in f ? 'string' : 'boolean', ...('short' in f ? { short: f.short } : {}) }] as const),
  ...FLAGGED.map(({ flag }) => [flag.name, {
    type: flag.arg === undefined ? 'boolean' : 'string',
    multiple: flag.repeat === true,
    ...(flag.short === undefined ? {} : { short: flag.short })
  }] as const)
])

function usage (message: string): TetherBalancerError {
  return new TetherBalancerError('TETHER_ERR_CLI_USAGE', `${message} (see --help)`)
}

function shownDefault (f: DeclaredField): string {
  const d = f.defaultValue
  if (d === undefined || typeof d === 'object' || typeof d === 'boolean') return ''
  return typeof d === 'number' && f.info.kind === 'duration' ? formatDuration(d) : String(d)
}

function optionSyntax (f: DeclaredField): string {
  const key = f.path[0] ?? ''
  if (f.info.kind === 'bool') return key
  if (f.choices !== undefined) return `${key}=${f.choices.join('|')}`
  return `${key}=${f.info.kind === 'duration' ? shownDefault(f) : f.info.kind === 'int' ? 'N' : key.toUpperCase()}`
}

const HELP_COLUMN = 31
const HELP_WIDTH = 100

/** `-l, --listen [HOST:]PORT` as `--help` shows it. */
function flagSyntax (short: string | undefined, long: string): string {
  return `  ${short === undefined ? '    ' : `-${short}, `}--${long}`
}

/** A help entry: `left`, then `text` from the help column, wrapped. */
function helpLine (left: string, text: string): string {
  const lines = [left.padEnd(HELP_COLUMN)]
  for (const word of text.split(' ')) {
    const last = lines.length - 1
    const line = lines[last] ?? ''
    if (line.trim() !== '' && line.length > HELP_COLUMN && line.length + 1 + word.length > HELP_WIDTH) lines.push(`${''.padEnd(HELP_COLUMN)}${word}`)
    else lines[last] = line.length > HELP_COLUMN ? `${line} ${word}` : `${line}${word}`
  }
  return lines.join('\n')
}

/** The text of `--help`. */
export const USAGE = [
  'Usage: tether-balancer [--config FILE] [options]',
  '',
  'A sticky-aware HTTP load balancer. Flags override the config file.',
  '',
  helpLine(flagSyntax('c', 'config FILE'), COMMAND_FLAGS[0].help),
  ...FLAGGED.flatMap(({ field: f, flag }) => {
    const choices = f.choices === undefined ? '' : `: ${f.choices.join(' | ')}`
    const fallback = shownDefault(f)
    const extras = [fallback === '' ? '' : `default ${fallback}`, flag.env === undefined ? '' : `or ${flag.env}`].filter((x) => x !== '').join('; ')
    const line = helpLine(flagSyntax(flag.short, `${flag.name}${flag.arg === undefined ? '' : ` ${flag.arg}`}`), `${flag.help}${choices}${extras === '' ? '' : ` (${extras})`}`)
    if (f.info.kind !== 'upstreams') return [line]
    return [line, helpLine('', `OPTS, comma-separated: ${UPSTREAM_OPTIONS.map(optionSyntax).join(' ')}`)]
  }),
  ...COMMAND_FLAGS.slice(1).map((f) => helpLine(flagSyntax('short' in f ? f.short : undefined, f.name), f.help)),
  '',
  'Signals: SIGHUP reloads the configuration without dropping connections; SIGTERM and SIGINT',
  'stop accepting and finish in-flight requests within timeouts.shutdown.',
  'Exit status: 0 on a clean stop, 1 on a runtime failure, 2 on a configuration or usage error.'
].join('\n')

/**
 * A flag's text as the value of a field of `kind`: integers must be integers; durations and
 * listen addresses given as digits become numbers (milliseconds, a port), as in a file.
 */
function valueOf (kind: FieldKind, text: string, what: string): unknown {
  if (kind === 'int') {
    if (!/^-?\d+$/.test(text)) throw usage(`${what} must be an integer, got ${JSON.stringify(text)}`)
    return Number(text)
  }
  if (kind === 'duration' || kind === 'listen') return /^\d+$/.test(text) ? Number(text) : text
  return text
}

/**
 * Parse one `--upstream` value: a URL, then comma-separated options named like an upstream's
 * fields.
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
    const field = UPSTREAM_OPTIONS.find((f) => f.path[0] === key)
    if (field === undefined) {
      throw usage(`--upstream ${value}: unknown option ${JSON.stringify(key)} (known: ${UPSTREAM_OPTIONS.map((f) => f.path[0]).join(', ')})`)
    }
    if (field.info.kind === 'bool') {
      if (text !== undefined && text !== 'true' && text !== 'false') throw usage(`--upstream ${value}: ${key} takes no value (or true/false)`)
      upstream[key] = text !== 'false'
    } else {
      if (text === undefined) throw usage(`--upstream ${value}: ${key} needs a value, such as ${optionSyntax(field)}`)
      upstream[key] = valueOf(field.info.kind, text, `--upstream: ${key}`)
    }
  }
  return upstream
}

/**
 * Set `value` at `path` in `target`, creating the sections on the way. A listen address given
 * as a scalar becomes `{ port }` when a flag sets a field beneath it (`--listen 443 --tls-cert …`).
 */
function setPath (target: Record<string, unknown>, path: readonly string[], value: unknown): void {
  let at = target
  for (const key of path.slice(0, -1)) {
    const next = at[key]
    if (typeof next === 'object' && next !== null) at = next as Record<string, unknown>
    else at = (at[key] = next === undefined ? {} : { port: next }) as Record<string, unknown>
  }
  at[path[path.length - 1] ?? ''] = value
}

/** Whether the section holding a field has a required field (which an environment value alone cannot give). */
function sectionNeedsMore (f: DeclaredField): boolean {
  const section = f.path.slice(0, -1).join('.')
  return FIELDS.some((g) => g !== f && !g.optional && g.path.slice(0, -1).join('.') === section && section !== '')
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
  // Not strict: the checks below give each mistake its own message.
  const { tokens } = parseArgs({ args: [...argv], options: OPTIONS, strict: false, allowPositionals: true, tokens: true })
  const given = new Map<string, string[]>()
  const on = new Set<string>()
  for (const token of tokens) {
    if (token.kind === 'positional') throw usage(`unexpected argument ${JSON.stringify(token.value)}`)
    if (token.kind !== 'option') continue
    const spec = OPTIONS[token.name]
    if (spec === undefined) throw usage(`unknown flag ${token.rawName}`)
    const flag = `--${token.name}`
    if (spec.type === 'boolean') {
      if (token.value !== undefined) throw usage(`${flag} takes no value`)
      on.add(token.name)
      continue
    }
    const value = token.value
    if (value === undefined || (token.inlineValue !== true && value.startsWith('-') && value.length > 1 && !/^-\d/.test(value))) throw usage(`${flag} needs a value`)
    given.set(token.name, [...(given.get(token.name) ?? []), value])
  }

  const overrides: Record<string, unknown> = {}
  for (const { field: f, flag } of FLAGGED) {
    const texts = given.get(flag.name)
    if (flag.arg === undefined) {
      if (on.has(flag.name)) setPath(overrides, f.path, flag.sets)
      continue
    }
    if (texts === undefined) continue
    const what = `--${flag.name}: the value`
    if (f.info.kind === 'upstreams') setPath(overrides, f.path, texts.map(parseUpstreamFlag))
    else if (flag.repeat === true) setPath(overrides, f.path, texts)
    else setPath(overrides, f.path, valueOf(f.info.kind, texts[texts.length - 1] ?? '', what))
    for (const [key, value] of Object.entries(flag.alsoSets ?? {})) setPath(overrides, [...f.path.slice(0, -1), key], value)
  }
  for (const { field: f, flag } of FLAGGED) {
    const value = flag.env === undefined ? undefined : env[flag.env]
    if (value === undefined || value === '' || given.has(flag.name)) continue
    // TETHER_ADMIN_TOKEN alone cannot turn the admin API on: it needs --admin.
    if (sectionNeedsMore(f) && overrides[f.path[0] ?? ''] === undefined) continue
    setPath(overrides, f.path, value)
  }

  const configFile = given.get('config')?.at(-1)
  const help = on.has('help')
  const version = on.has('version')
  if (!help && !version && configFile === undefined && overrides.upstreams === undefined) {
    throw usage('give --config FILE or at least one --upstream URL')
  }
  return { configFile, overrides, check: on.has('check'), help, version }
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
  return mergeSections(base as Record<string, unknown>, overrides)
}

function isSection (x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x)
}

/** Sections merge at every depth (`listen.tls.cert` over a file's `listen.tls`); lists and scalars replace. */
function mergeSections (base: Record<string, unknown>, overrides: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base }
  for (const [key, value] of Object.entries(overrides)) {
    const prev = out[key]
    if (isSection(value) && isSection(prev)) out[key] = mergeSections(prev, value)
    // `--listen 443` over a file's `listen: { port, tls }` changes the port and keeps TLS;
    // `--tls-cert` over a file's `listen: 443` keeps the port.
    else if (key === 'listen' && isSection(prev) && value !== undefined && !isSection(value)) out[key] = { ...prev, port: value }
    else if (key === 'listen' && isSection(value) && prev !== undefined && !isSection(prev) && value.port === undefined) out[key] = { port: prev, ...value }
    else out[key] = value
  }
  return out
}
