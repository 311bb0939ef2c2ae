/**
 * The messages between the supervisor (the cluster's primary) and its workers, over
 * `node:cluster`'s IPC channel. Every type starts with `tether:`, so that prom-client's own
 * cluster messages on the same channel are told apart.
 *
 * The supervisor owns what must be one for the whole balancer (health verdicts, admin
 * changes, the configuration, the shared secrets) and sends it; the workers only report.
 */
import type { StatsReport } from '../admin/timeline.js'
import type { NodeUpdate } from '../config/types.js'
import type { CheckResult } from '../health/active.js'
import type { NodeSnapshot } from '../pool/snapshot.js'

/**
 * Supervisor to worker.
 *
 * @example
 * ```ts
 * const msg: ToWorker = { t: 'tether:set-node', node: 'app-1', update: { state: 'drain' } }
 * worker.send(msg)
 * ```
 */
export type ToWorker =
  /** The configuration (as read, unresolved) and the secrets every worker shares. */
  | { readonly t: 'tether:start', readonly config: unknown, readonly configFile: string | null, readonly ticketSecret: string, readonly stickySecret: string, readonly workers: number }
  /** The supervisor's health verdict on a node: a check result that flips it (or confirms it). */
  | { readonly t: 'tether:check', readonly node: string, readonly result: CheckResult }
  /** The supervisor's passive verdict: the node is out for `ms` (the worker lets it back itself). */
  | { readonly t: 'tether:hold', readonly node: string, readonly ms: number, readonly reason: string }
  /** An admin change, already validated and applied by the supervisor. */
  | { readonly t: 'tether:set-node', readonly node: string, readonly update: NodeUpdate }
  /** SIGHUP: a new configuration the supervisor has validated. */
  | { readonly t: 'tether:reload', readonly config: unknown, readonly configFile: string | null }
  /** The admin API asks for this worker's counters and timeline. */
  | { readonly t: 'tether:stats-req', readonly id: number, readonly since: number | null }
  /** SIGTERM: drain and exit. */
  | { readonly t: 'tether:stop' }

/**
 * Worker to supervisor.
 *
 * @example
 * ```ts
 * const msg: FromWorker = { t: 'tether:ready', port: 8080 }
 * process.send?.(msg)
 * ```
 */
export type FromWorker =
  /** Listening for messages: the supervisor answers with `tether:start`. */
  | { readonly t: 'tether:hello' }
  | { readonly t: 'tether:ready', readonly port: number }
  /** A failed attempt on a node, for the supervisor's passive health. */
  | { readonly t: 'tether:failure', readonly node: string, readonly reason: string }
  /** The worker could not start (a port in use, say): the error's code and its lines. */
  | { readonly t: 'tether:failed', readonly code: string, readonly lines: readonly string[] }
  | { readonly t: 'tether:stats', readonly id: number, readonly nodes: readonly NodeSnapshot[], readonly report: StatsReport }

/**
 * Whether an IPC message is one of ours (and not prom-client's or someone else's).
 *
 * @example
 * ```ts
 * process.on('message', (m) => { if (isTetherMessage<ToWorker>(m)) handle(m) })
 * ```
 */
export function isTetherMessage<T extends { readonly t: string }> (message: unknown): message is T {
  return typeof message === 'object' && message !== null && typeof (message as { t?: unknown }).t === 'string' && (message as { t: string }).t.startsWith('tether:')
}
