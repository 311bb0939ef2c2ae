/**
 * Validation and defaults: runs the schema (`schema.ts`) over a configuration from a file,
 * flags or code, and turns every problem into a `ConfigIssue` naming its field, value and file.
 * All problems are collected, then thrown together.
 */
import { randomBytes } from 'node:crypto'
import * as v from 'valibot'
import { TetherBalancerError, formatIssue, type ConfigIssue } from '../errors.js'
import { configSchema, nodeUpdateSchema } from './schema.js'
import type { NodeUpdate, ResolvedConfig } from './types.js'

/**
 * Options for {@link resolveConfig}.
 *
 * @example
 * ```ts
 * resolveConfig(raw, { file: 'lb.yaml' } satisfies ResolveOptions)
 * ```
 */
export interface ResolveOptions {
  /** The file the config came from, named in every issue. */
  file?: string
  /** Sticky secret to reuse when none is configured (keeps cookies valid across a reload). */
  generatedSecret?: string
}

type Issue = v.BaseIssue<unknown>

/** `upstreams[1].weight` from an issue's path (and a prefix from an enclosing union). */
function fieldOf (issue: Issue, prefix: string): string {
  let field = prefix
  for (const item of issue.path ?? []) {
    const key = item.key as string | number
    field += typeof key === 'number' ? `[${key}]` : field === '' ? key : `.${key}`
  }
  return field
}

/**
 * Flatten Valibot's issues into ours. A union (`true`, `false` or an object; a URL or an
 * object) reports the issues of the alternative whose shape matched: those with a path inside
 * it. When none matched, the union's own message stands.
 */
function collect (issues: readonly Issue[], prefix: string, file: string | undefined, out: ConfigIssue[]): void {
  for (const issue of issues) {
    const field = fieldOf(issue, prefix)
    const inner = issue.type === 'union' ? (issue.issues ?? []).filter((i) => (i.path?.length ?? 0) > 0) : []
    if (inner.length > 0) { collect(inner, field, file, out); continue }
    out.push({ field: field === '' ? '(configuration)' : field, value: issue.input, problem: issue.message, file })
  }
}

function issuesOf (issues: readonly Issue[], file: string | undefined): ConfigIssue[] {
  const out: ConfigIssue[] = []
  collect(issues, '', file, out)
  return out
}

/**
 * Validate a configuration and fill in every default. Throws one
 * `TETHER_ERR_CONFIG_INVALID` error carrying every issue found.
 *
 * @example
 * ```ts
 * const config = resolveConfig({ upstreams: ['http://127.0.0.1:3001'] })
 * config.upstreams[0].name // '127.0.0.1:3001'
 * ```
 */
export function resolveConfig (input: unknown, options: ResolveOptions = {}): ResolvedConfig {
  // One issue per field (the first that applies), every field checked.
  const result = v.safeParse(configSchema, input, { abortPipeEarly: true })
  if (!result.success) {
    const issues = issuesOf(result.issues, options.file)
    throw new TetherBalancerError('TETHER_ERR_CONFIG_INVALID', `invalid configuration:\n  ${issues.map(formatIssue).join('\n  ')}`, { issues })
  }
  const config = result.output
  if (!config.sticky.secretGenerated) return config
  return { ...config, sticky: { ...config.sticky, secrets: [options.generatedSecret ?? randomBytes(32).toString('base64url')] } }
}

/**
 * Validate a node update (admin API, `balancer.setNode`) with the node fields' own rules.
 * Throws `TETHER_ERR_INVALID_NODE_UPDATE` naming each problem.
 *
 * @example
 * ```ts
 * parseNodeUpdate({ weight: 3 }) // { weight: 3 }
 * parseNodeUpdate({ weight: 0 }) // throws: weight: must be an integer from 1 to 10000 (got 0)
 * ```
 */
export function parseNodeUpdate (input: unknown): NodeUpdate {
  const result = v.safeParse(nodeUpdateSchema, input, { abortPipeEarly: true })
  if (result.success) return result.output
  const problems = issuesOf(result.issues, undefined).map((i) => i.field === '(configuration)' ? i.problem : formatIssue(i))
  throw new TetherBalancerError('TETHER_ERR_INVALID_NODE_UPDATE', problems.join('; '))
}
