/**
 * The "a lock was released" signal for PostgresStore: one dedicated connection per store
 * LISTENs on the store's channel; a release (or the destroy of a locked session) sends
 * `pg_notify(channel, id)` in the same statement, so the waiters of that session, in every
 * process, wake at once. Waiters never poll the database.
 *
 * When the connection drops, notifications sent meanwhile are lost: on reconnect every waiter
 * of this process retries once, and until then a waiter still wakes when the lease it waits
 * on runs out.
 */
import type { PgClient, PgConfig, PgModule } from './driver.js'

/**
 * @example
 * ```ts
 * const listener = new ReleaseListener(pg, config, 'tether_unlock', (id) => locks.released(id))
 * await listener.ready() // before the first lock attempt, so no release is missed
 * ```
 */
export class ReleaseListener {
  readonly #pg: PgModule
  readonly #config: PgConfig
  readonly #channel: string
  readonly #onRelease: (id?: string) => void
  #client: PgClient | undefined
  #connecting: Promise<void> | undefined
  #retry: NodeJS.Timeout | undefined
  #closed = false

  constructor (pg: PgModule, config: PgConfig, channel: string, onRelease: (id?: string) => void) {
    this.#pg = pg
    this.#config = config
    this.#channel = channel
    this.#onRelease = onRelease
  }

  /** Resolves once LISTEN is in place (or failed: waiters then fall back to the lease). */
  ready (): Promise<void> {
    this.#connecting ??= this.#connect()
    return this.#connecting
  }

  async close (): Promise<void> {
    this.#closed = true
    clearTimeout(this.#retry)
    const client = this.#client
    this.#client = undefined
    if (client !== undefined) await client.end().catch(() => {})
  }

  async #connect (): Promise<void> {
    const client = new this.#pg.Client({ ...this.#config, application_name: 'tether-listen' })
    client.on('notification', (message) => {
      if (message.channel === this.#channel) this.#onRelease(message.payload)
    })
    const lost = (): void => {
      if (this.#client !== client) return
      this.#client = undefined
      client.end().catch(() => {})
      this.#scheduleReconnect()
    }
    client.on('error', lost)
    client.on('end', lost)
    try {
      await client.connect()
      await client.query(`LISTEN "${this.#channel}"`)
      if (this.#closed) { await client.end(); return }
      this.#client = client
    } catch {
      client.end().catch(() => {})
      this.#scheduleReconnect()
    }
  }

  #scheduleReconnect (): void {
    if (this.#closed || this.#retry !== undefined) return
    this.#retry = setTimeout(() => {
      this.#retry = undefined
      this.#connecting = this.#connect().then(() => {
        // Releases sent while we were away went unheard: let every waiter try again.
        if (this.#client !== undefined) this.#onRelease()
      })
    }, 1000)
    this.#retry.unref()
  }
}
