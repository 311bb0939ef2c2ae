/**
 * Session-ticket keys that rotate. The key for a period is derived from a secret and the
 * period's number (HKDF), not drawn at random: every process that holds the same secret
 * computes the same key at the same time without talking to the others. So a ticket issued by
 * one worker resumes on another once the balancer runs several (node:cluster): the primary
 * hands its secret to each worker, and nothing else needs sharing. A leaked key exposes only
 * its own period's tickets (the secret itself never goes on the wire).
 */
import { hkdfSync, randomBytes } from 'node:crypto'

/** What Node's `server.setTicketKeys` takes: 16 bytes of name, 16 of HMAC key, 16 of AES key. */
export const TICKET_KEY_BYTES = 48

/**
 * The ticket key of `period` for `secret`.
 *
 * @example
 * ```ts
 * ticketKey(secret, Math.floor(Date.now() / rotationMs)).length // 48
 * ```
 */
export function ticketKey (secret: Buffer, period: number): Buffer {
  return Buffer.from(hkdfSync('sha256', secret, 'tether-tls-ticket-key', `period:${period}`, TICKET_KEY_BYTES))
}

/**
 * Applies the current ticket key to a server and rotates it at each period boundary.
 *
 * @example
 * ```ts
 * const tickets = new TicketKeys(secret, 12 * 3600_000, (key) => server.setTicketKeys(key))
 * tickets.start()
 * // at shutdown
 * tickets.stop()
 * ```
 */
export class TicketKeys {
  readonly #secret: Buffer
  readonly #periodMs: number
  readonly #apply: (key: Buffer) => void
  #timer: NodeJS.Timeout | null = null

  /** `secret`: shared by every process that should accept one another's tickets (random by default). */
  constructor (secret: Buffer | undefined, periodMs: number, apply: (key: Buffer) => void) {
    this.#secret = secret ?? randomBytes(32)
    this.#periodMs = periodMs
    this.#apply = apply
  }

  /** The secret, for handing to worker processes. */
  get secret (): Buffer { return this.#secret }

  /** The key in force now. */
  current (now = Date.now()): Buffer {
    return ticketKey(this.#secret, Math.floor(now / this.#periodMs))
  }

  /** Apply the current key now and at every period boundary. */
  start (): void {
    this.stop()
    this.#apply(this.current())
    const now = Date.now()
    const next = (Math.floor(now / this.#periodMs) + 1) * this.#periodMs
    // Timers over 2^31-1 ms overflow; a long period is reached in steps.
    this.#timer = setTimeout(() => this.start(), Math.min(next - now + 10, 2 ** 31 - 1))
    this.#timer.unref()
  }

  stop (): void {
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#timer = null
  }
}
