/**
 * One `node:cluster` worker: it serves the shared listener with its own balancer, and takes
 * everything that must be the same in every worker from the supervisor (configuration, health
 * verdicts, admin changes, secrets). It runs no health checks and no admin API of its own.
 */
import { AggregatorRegistry } from 'prom-client'
import { createWorkerBalancer, type ClusterMember } from '../balancer.js'
import type { BalancerConfig } from '../config/types.js'
import { TetherBalancerError, formatIssue } from '../errors.js'
import { isTetherMessage, type FromWorker, type ToWorker } from './messages.js'

function send (message: FromWorker): void {
  process.send?.(message)
}

function configFileOf (file: string | null): { configFile?: string } {
  return file === null ? {} : { configFile: file }
}

/**
 * Run this process as a worker: wait for the supervisor's `tether:start`, serve, and obey.
 *
 * @example
 * ```ts
 * if (cluster.isWorker) runWorker()
 * ```
 */
export function runWorker (): void {
  let member: ClusterMember | null = null
  let stopping = false
  const stop = (): void => {
    if (stopping) return
    stopping = true
    if (member === null) process.exit(0)
    member.close().then(() => process.exit(0), () => process.exit(1))
  }
  // The supervisor reloads and stops every worker: a signal sent to the whole process group
  // (a terminal's Ctrl-C, `kill -HUP -PGID`) must not make a worker act on its own.
  process.on('SIGHUP', () => {})
  process.on('SIGINT', () => {})
  // SIGTERM to this worker alone (an operator, a process manager): drain and go; the
  // supervisor replaces it.
  process.on('SIGTERM', stop)
  // The supervisor is gone: nobody will replace or stop us, so stop.
  process.on('disconnect', stop)

  process.on('message', (message: unknown) => {
    if (!isTetherMessage<ToWorker>(message)) return
    switch (message.t) {
      case 'tether:start': {
        let started: ClusterMember
        try {
          started = createWorkerBalancer(message.config as BalancerConfig, { ticketSecret: Buffer.from(message.ticketSecret, 'base64'), ...configFileOf(message.configFile) }, { stickySecret: message.stickySecret, workers: message.workers, reportFailure: (node, reason) => send({ t: 'tether:failure', node, reason }) })
        } catch (err) {
          failed(err)
          return
        }
        member = started
        // /metrics in the supervisor sums this registry with the other workers'. prom-client
        // answers the supervisor's requests once an AggregatorRegistry exists in the worker.
        AggregatorRegistry.setRegistries([started.registry])
        void new AggregatorRegistry()
        started.listen().then(({ port }) => send({ t: 'tether:ready', port }), failed)
        return
      }
      case 'tether:stop': stop(); return
    }
    if (member === null || stopping) return
    switch (message.t) {
      case 'tether:check': member.applyCheck(message.node, message.result); return
      case 'tether:hold': member.applyHold(message.node, message.ms, message.reason); return
      case 'tether:set-node':
        try { member.setNode(message.node, message.update) } catch (err) { member.log.warn({ err: (err as Error).message, node: message.node }, 'admin change from the supervisor not applied') }
        return
      case 'tether:reload':
        try {
          member.reload(message.config as BalancerConfig, configFileOf(message.configFile))
        } catch (err) {
          // The supervisor validated it first; this is a certificate read again, say.
          member.log.error({ code: err instanceof TetherBalancerError ? err.code : undefined, err: (err as Error).message }, 'reload rejected in this worker: the previous configuration stays in force')
        }
        return
      case 'tether:stats-req':
        send({ t: 'tether:stats', id: message.id, nodes: member.nodes(), report: member.stats(message.since) })
    }
  })
  send({ t: 'tether:hello' })
}

/** Tell the supervisor why this worker could not start, and exit. */
function failed (err: unknown): void {
  const code = err instanceof TetherBalancerError ? err.code : 'TETHER_ERR_WORKER_EXIT'
  const lines = err instanceof TetherBalancerError && err.issues.length > 0 ? err.issues.map(formatIssue) : [(err as Error).message]
  const message: FromWorker = { t: 'tether:failed', code, lines }
  // Exit once the message is out.
  if (process.send === undefined) process.exit(1)
  process.send(message, () => process.exit(1))
}
