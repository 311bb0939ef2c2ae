/**
 * The kinds of configuration field, as Valibot schemas that carry their own error message and
 * a description (`FieldInfo`): what `schema.ts` declares every field with. The messages are the
 * ones users see ("upstreams[0].weight: must be an integer from 1 to 10000"); the descriptions
 * feed the configuration table in docs/balancer.md and the command-line flags.
 */
import * as v from 'valibot'

/**
 * A command-line flag that sets a field.
 *
 * @example
 * ```ts
 * const flag: FlagInfo = { name: 'listen', short: 'l', arg: '[HOST:]PORT', help: 'where to listen' }
 * ```
 */
export interface FlagInfo {
  /** Long name, without the dashes. */
  readonly name: string
  readonly short?: string
  /** The value's placeholder in `--help`; absent for a flag without a value. */
  readonly arg?: string
  readonly help: string
  /** For a flag without a value: the value it sets. */
  readonly sets?: unknown
  /** Read from this environment variable when the flag is not given. */
  readonly env?: string
  /** Repeatable: each use adds an item to the list. */
  readonly repeat?: boolean
  /** Sibling fields the flag sets too. */
  readonly alsoSets?: Readonly<Record<string, unknown>>
}

/** How a flag's text becomes a value, and how the docs show a field. */
export type FieldKind = 'int' | 'bool' | 'duration' | 'text' | 'choice' | 'listen' | 'list' | 'section' | 'upstreams' | 'secret'

/**
 * What the docs and the CLI know about a field.
 *
 * @example
 * ```ts
 * const info: FieldInfo = { kind: 'int', doc: 'further nodes tried after a safe-to-retry failure' }
 * ```
 */
// A type, not an interface: Valibot's metadata must be assignable to Record<string, unknown>.
export type FieldInfo = {
  readonly kind: FieldKind
  /** What the field means, one line. */
  readonly doc: string
  /** The default as the docs show it, where the value alone would not say enough. */
  readonly shown?: string
  readonly flag?: FlagInfo
  /** An integer's bounds, inclusive. */
  readonly range?: readonly [number, number]
}

/** The description a field carries; its default is the schema's own (`v.optional(schema, default)`). */
export type Described = Omit<FieldInfo, 'kind' | 'range'>

function info<T> (kind: FieldKind, d: Omit<FieldInfo, 'kind'>): v.MetadataAction<T, FieldInfo> {
  return v.metadata<T, FieldInfo>({ kind, ...d })
}

/** An integer in `[min, max]`. */
export function int (min: number, max: number, d: Described) {
  const message = `must be an integer from ${min} to ${max}`
  return v.pipe(v.number(message), v.integer(message), v.minValue(min, message), v.maxValue(max, message), info('int', { ...d, range: [min, max] }))
}

export function bool (d: Described) {
  return v.pipe(v.boolean('must be true or false'), info('bool', d))
}

/** One of `values`. */
export function choice<const T extends readonly [string, ...string[]]> (values: T, d: Described) {
  return v.pipe(v.picklist(values, `must be one of ${values.join(', ')}`), info('choice', d))
}

/** A non-empty string, matching `pattern` (else `problem`) when one is given. */
export function text (d: Described, pattern = /^/, problem = '') {
  // Without a pattern, /^/ matches every string: `problem` is never shown.
  const empty = 'must be a non-empty string'
  return v.pipe(v.string(empty), v.minLength(1, empty), v.regex(pattern, problem), info('text', d))
}

const DURATION = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h)?$/
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }

/**
 * Parse a duration: milliseconds as a number, or a string with a unit (`ms`, `s`, `m`, `h`).
 * Returns `undefined` when the value is not a duration.
 *
 * @example
 * ```ts
 * parseDuration('1.5s') // 1500
 * parseDuration(250)    // 250
 * ```
 */
export function parseDuration (value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? Math.round(value) : undefined
  if (typeof value !== 'string') return undefined
  const m = DURATION.exec(value.trim())
  if (m === null) return undefined
  return Math.round(Number(m[1]) * (UNIT_MS[m[2] ?? 'ms'] ?? 1))
}

/** A duration (milliseconds, or a string with a unit), at least `min` ms; the output is ms. */
export function duration (min: number, d: Described) {
  const message = `must be a duration such as 500, "500ms", "10s" or "1m"${min > 0 ? ` (at least ${min} ms)` : ''}`
  return v.pipe(
    v.union([v.number(), v.string()], message),
    v.rawTransform(({ dataset, addIssue, NEVER }) => {
      const ms = parseDuration(dataset.value)
      if (ms !== undefined && ms >= min) return ms
      addIssue({ message })
      return NEVER
    }),
    info('duration', d)
  )
}

/**
 * A listen address after parsing. `host` undefined means every interface.
 *
 * @example
 * ```ts
 * const where: ResolvedListen = { host: '127.0.0.1', port: 9090 }
 * ```
 */
export interface ResolvedListen {
  readonly host: string | undefined
  readonly port: number
}

/**
 * Parse a listen address. A bare port gets `defaultHost`.
 *
 * @example
 * ```ts
 * parseListen('[::1]:8080', undefined) // { host: '::1', port: 8080 }
 * parseListen(9090, '127.0.0.1')       // { host: '127.0.0.1', port: 9090 }
 * ```
 */
export function parseListen (value: unknown, defaultHost: string | undefined): ResolvedListen | undefined {
  const port = (text: string): number | undefined => /^\d{1,5}$/.test(text) && Number(text) <= 65535 ? Number(text) : undefined
  if (typeof value === 'number') {
    return Number.isInteger(value) && value >= 0 && value <= 65535 ? { host: defaultHost, port: value } : undefined
  }
  if (typeof value !== 'string' || value === '') return undefined
  const bare = port(value)
  if (bare !== undefined) return { host: defaultHost, port: bare }
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d+)$/.exec(value)
  if (m === null) return undefined
  const p = port(m[3] ?? '')
  if (p === undefined) return undefined
  return { host: m[1] ?? m[2], port: p }
}

/** A port or `"host:port"`; a bare port binds to `defaultHost`. The output is a `ResolvedListen`. */
export function listen (defaultHost: string | undefined, d: Described) {
  const message = 'must be a port or "host:port"'
  return v.pipe(
    v.union([v.number(), v.string()], message),
    v.rawTransform(({ dataset, addIssue, NEVER }) => {
      const parsed = parseListen(dataset.value, defaultHost)
      if (parsed !== undefined) return parsed
      addIssue({ message })
      return NEVER
    }),
    info('listen', d)
  )
}

/** A list of strings, each of which `valid` accepts (else `problem`, naming the item). */
export function list (whole: string, problem: string, valid: (item: string) => boolean, d: Described) {
  return v.pipe(v.array(v.pipe(v.string(problem), v.check(valid, problem)), whole), info('list', d))
}

/**
 * A secret string, or a list of them (key rotation), each at least `min` characters; the output
 * is always a list. Its value is never echoed in an error.
 */
export function secrets (min: number, problem: string, d: Described) {
  return v.pipe(
    // The type users write; every check is below, where a failure can hide the value.
    v.custom<string | string[]>(() => true),
    v.rawTransform(({ dataset, addIssue, NEVER }) => {
      const items: unknown[] = Array.isArray(dataset.value) ? dataset.value : [dataset.value]
      if (items.length > 0 && items.every((x) => typeof x === 'string' && x.length >= min)) return items as string[]
      addIssue({ message: problem, input: '<hidden>' })
      return NEVER
    }),
    info('secret', d)
  )
}

/** The description of a section (an object of fields). */
export function section<T> (d: Described): v.MetadataAction<T, FieldInfo> {
  return info<T>('section', d)
}

/**
 * A duration in the docs' words: `10s`, `5m`, `250ms`.
 *
 * @example
 * ```ts
 * formatDuration(300_000) // '5m'
 * ```
 */
export function formatDuration (ms: number): string {
  for (const [unit, size] of [['h', 3_600_000], ['m', 60_000], ['s', 1000]] as const) {
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`
  }
  return `${ms}ms`
}

/**
 * An object whose fields are `entries`. Every key it does not know is reported (with the known
 * ones), and a missing required field is reported with that field's own message.
 */
export function fields<const E extends v.ObjectEntries> (entries: E) {
  const known = Object.keys(entries)
  const unknownKey = v.custom<never>(() => false, `is not a known field (known: ${known.join(', ')})`)
  const schema = v.objectWithRest(entries, unknownKey, (issue) => {
    // A required key is missing: say what it must be, as if it had been given empty.
    const key = issue.expected?.startsWith('"') === true ? issue.expected.slice(1, -1) : undefined
    const entry = key === undefined ? undefined : entries[key]
    return entry === undefined ? 'must be an object' : v.safeParse(entry, undefined).issues?.[0]?.message ?? 'is required'
  })
  // objectWithRest's inferred type adds `[key: string]: never` for the rest, which would make
  // every declared field `never`: type it as the object it accepts (unknown keys are errors).
  return schema as unknown as v.ObjectSchema<E, undefined>
}

/** A field's description: on its pipe, or on the schema an optional/nullable wraps. */
export function infoOf (schema: v.GenericSchema): FieldInfo | undefined {
  const meta = v.getMetadata(schema) as Partial<FieldInfo>
  if (meta.kind !== undefined) return meta as FieldInfo
  const wrapped = (schema as { wrapped?: v.GenericSchema }).wrapped
  return wrapped === undefined ? undefined : infoOf(wrapped)
}
