/**
 * Walks the configuration schema field by field, for what is derived from its declarations
 * besides validation: the docs table and the command-line flags.
 */
import type * as v from 'valibot'
import { infoOf, type FieldInfo } from './fields.js'

/**
 * One declared field.
 *
 * @example
 * ```ts
 * const retries = fieldsOf(configSchema).find((f) => f.path.join('.') === 'retries')
 * retries?.defaultValue // 2
 * ```
 */
export interface DeclaredField {
  /** Keys from the root; `[]` marks the items of a list (`['upstreams', '[]', 'weight']`). */
  readonly path: readonly string[]
  readonly info: FieldInfo
  /** Whether the field may be left out. */
  readonly optional: boolean
  /** The schema's default (resolved form), when it has one. */
  readonly defaultValue: unknown
  /** The allowed values of a choice. */
  readonly choices: readonly string[] | undefined
}

interface Node {
  readonly type: string
  readonly wrapped?: Node
  readonly default?: unknown
  readonly entries?: Record<string, Node>
  readonly options?: readonly Node[]
  readonly item?: Node
  readonly pipe?: readonly Node[]
}

/** The object (entries) a field holds, if any: itself, one alternative of a union, or a list's items. */
function objectOf (node: Node): { entries: Record<string, Node>, list: boolean } | undefined {
  if (node.wrapped !== undefined) return objectOf(node.wrapped)
  if (node.entries !== undefined) return { entries: node.entries, list: false }
  if (node.item !== undefined) {
    const inner = objectOf(node.item)
    return inner === undefined ? undefined : { entries: inner.entries, list: true }
  }
  for (const option of node.options ?? []) {
    const inner = objectOf(option)
    if (inner !== undefined) return inner
  }
  return undefined
}

function choicesOf (node: Node): readonly string[] | undefined {
  if (node.wrapped !== undefined) return choicesOf(node.wrapped)
  const first = node.pipe?.[0] ?? node
  return first.type === 'picklist' ? (first as unknown as { options: readonly string[] }).options : undefined
}

/**
 * Every described field of `schema`, depth first, in declaration order.
 *
 * @example
 * ```ts
 * for (const f of fieldsOf(configSchema)) console.log(f.path.join('.'), f.info.doc)
 * ```
 */
export function fieldsOf (schema: v.GenericSchema, prefix: readonly string[] = []): DeclaredField[] {
  const out: DeclaredField[] = []
  const object = objectOf(schema as unknown as Node)
  if (object === undefined) return out
  for (const [key, entry] of Object.entries(object.entries)) {
    const info = infoOf(entry as unknown as v.GenericSchema)
    const base = object.list ? [...prefix, '[]'] : prefix
    const path = [...base, key]
    if (info !== undefined) {
      const optional = entry.type === 'optional' || entry.type === 'nullable'
      const raw = optional ? entry.default : undefined
      const defaultValue = typeof raw === 'function' ? (raw as () => unknown)() : raw
      out.push({ path, info, optional, defaultValue, choices: choicesOf(entry) })
    }
    out.push(...fieldsOf(entry as unknown as v.GenericSchema, path))
  }
  return out
}
