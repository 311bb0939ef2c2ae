/**
 * Validation and defaults: runs the schema (`schema.ts`) over a configuration from a file,
 * flags or code, and turns every problem into a `ConfigIssue` naming its field, value and file.
 * All problems are collected, then thrown together.
 */
import { X509Certificate, randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
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
  const config = withUpstreamCas(result.output, options.file)
  if (!config.sticky.secretGenerated) return config
  return { ...config, sticky: { ...config.sticky, secrets: [options.generatedSecret ?? randomBytes(32).toString('base64url')] } }
}

/** The PEM of a CA file, or the reason it cannot serve as one. */
function readCa (file: string): { pem: string } | { problem: string } {
  let pem: string
  try { pem = readFileSync(file, 'utf8') } catch (err) { return { problem: `cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})` } }
  try {
    if (!pem.includes('-----BEGIN CERTIFICATE-----')) throw new Error('no certificate')
    void new X509Certificate(pem)
  } catch { return { problem: 'holds no PEM certificate' } }
  return { pem }
}

/**
 * Read the CA file of every https:// node (once per file), at start and on each reload, so that
 * a missing or broken file is a configuration error at once, not a failed handshake later.
 */
function withUpstreamCas (config: ResolvedConfig, file: string | undefined): ResolvedConfig {
  const read = new Map<string, ReturnType<typeof readCa>>()
  const issues: ConfigIssue[] = []
  const upstreams = config.upstreams.map((u, i) => {
    const caFile = u.tls?.caFile ?? null
    if (u.tls === null || caFile === null) return u
    let outcome = read.get(caFile)
    if (outcome === undefined) { outcome = readCa(caFile); read.set(caFile, outcome) }
    if ('pem' in outcome) return { ...u, tls: { ...u.tls, ca: outcome.pem } }
    const field = caFile === config.upstreamTls.ca ? 'upstreamTls.ca' : `upstreams[${i}].tls.ca`
    if (!issues.some((x) => x.field === field)) issues.push({ field, value: caFile, problem: outcome.problem, file })
    return u
  })
  if (issues.length > 0) throw new TetherBalancerError('TETHER_ERR_CONFIG_INVALID', `invalid configuration:\n  ${issues.map(formatIssue).join('\n  ')}`, { issues })
  return { ...config, upstreams }
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
