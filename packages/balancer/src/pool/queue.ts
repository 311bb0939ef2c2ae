/**
 * Requests waiting for a slot on a node at its `maxConn` (HAProxy's server and backend queues):
 * first in, first out, bounded, each with its own deadline. The pool owns the queues and hands
 * a freed slot to the first waiter that may use it; a waiter that leaves (its client closed) is
 * removed in O(1).
 */
import { performance } from 'node:perf_hooks'
import type { UpstreamNode } from './node.js'
import type { Lease } from './lease.js'

/**
 * Why a request got no slot: the queue was full, or the wait ran out.
 *
 * @example
 * ```ts
 * const code: QueueRefusal = 'TETHER_ERR_QUEUE_TIMEOUT'
 * ```
 */
export type QueueRefusal = 'TETHER_ERR_QUEUE_FULL' | 'TETHER_ERR_QUEUE_TIMEOUT'

/**
 * A request that may wait for a slot.
 *
 * @example
 * ```ts
 * const waiter: Waiter = { granted (lease) { send(lease) }, refused (code) { answer503(code) } }
 * ```
 */
export interface Waiter {
  /** A slot is its: the lease counts the attempt from now on. */
  granted (lease: Lease): void
  /** No slot: the queue is full, or the wait ran out. */
  refused (code: QueueRefusal): void
}

/** One waiting request. */
export class QueueEntry {
  timer: NodeJS.Timeout | undefined = undefined
  constructor (
    readonly waiter: Waiter,
    /** The queue it waits in. */
    readonly queue: WaitQueue,
    /** Nodes it must not be given (already tried). */
    readonly avoid: ReadonlySet<UpstreamNode> | null,
    /** When it began to wait (performance.now(), ms). */
    readonly since = performance.now()
  ) {}
}

/** One bounded FIFO queue: a node's (sticky clients) or the pool's (clients with no node yet). */
export class WaitQueue {
  // A Set keeps insertion order and deletes in O(1): FIFO with cheap removal from the middle.
  readonly #entries = new Set<QueueEntry>()

  get length (): number { return this.#entries.size }

  add (entry: QueueEntry): void { this.#entries.add(entry) }

  delete (entry: QueueEntry): boolean { return this.#entries.delete(entry) }

  /** The first entry that `fits`, taken out of the queue. */
  take (fits: (entry: QueueEntry) => boolean): QueueEntry | undefined {
    for (const entry of this.#entries) {
      if (fits(entry)) { this.#entries.delete(entry); return entry }
    }
    return undefined
  }

  /** Every entry, taken out (shutdown, or the node left). */
  drain (): QueueEntry[] {
    const all = [...this.#entries]
    this.#entries.clear()
    return all
  }
}
