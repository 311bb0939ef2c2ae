/**
 * Active HTTP health checks, like HAProxy's `option httpchk` with `inter`, `rise` and `fall`:
 * a GET on a fresh connection (so a check never waits behind traffic, nor keeps a dead
 * connection alive), 2xx or 3xx within the timeout is a success. Checks of one node START every
 * `interval`, on a fixed rate: a check that hangs until its timeout is a failure and does not
 * push the next one back, so a hung node is down within `fall × interval + timeout` (the
 * config caps `timeout` at `interval`, so checks of one node do not pile up). The checker only
 * measures; the pool applies rise and fall.
 */
import { request as httpRequest, type IncomingMessage } from 'node:http'
import { request as httpsRequest } from 'node:https'
import { performance } from 'node:perf_hooks'
import type { ResolvedHealthCheck } from '../config/types.js'
import type { UpstreamTarget } from '../engines/engine.js'
import { isTlsFailure, tlsOptions } from '../engines/tls.js'

/**
 * The result of one check.
 *
 * @example
 * ```ts
 * const result: CheckResult = { at: Date.now(), ok: false, status: 503, error: 'status 503', durationMs: 2.1 }
 * ```
 */
export interface CheckResult {
  /** Wall-clock time of the check (ms since epoch). */
  readonly at: number
  readonly ok: boolean
  /** HTTP status, when one came back. */
  readonly status: number | null
  /** Why it failed, when it did. */
  readonly error: string | null
  readonly durationMs: number
}

/**
 * Run one check against `target`.
 *
 * @example
 * ```ts
 * const result = await checkOnce({ name: 'app-1', host: '127.0.0.1', port: 3001, authority: '127.0.0.1:3001' }, { path: '/health', timeout: 1000 })
 * result.ok // true for a 2xx or 3xx
 * ```
 */
export function checkOnce (target: UpstreamTarget, settings: Pick<ResolvedHealthCheck, 'path' | 'timeout'>): Promise<CheckResult> {
  const at = Date.now()
  const t0 = performance.now()
  return new Promise((resolve) => {
    let done = false
    const finish = (status: number | null, error: string | null): void => {
      if (done) return
      done = true
      clearTimeout(timer)
      const ok = error === null && status !== null && status >= 200 && status < 400
      resolve({ at, ok, status, error: ok ? null : error ?? `status ${String(status)}`, durationMs: Math.round((performance.now() - t0) * 10) / 10 })
    }
    const options = {
      host: target.host,
      port: target.port,
      path: settings.path,
      method: 'GET',
      agent: false as const,
      headers: { host: target.authority, 'user-agent': 'tether-balancer-health', connection: 'close' }
    }
    // An https:// node is checked with the TLS settings its traffic uses: a certificate the
    // engines would refuse fails the check too.
    const tls = target.tls ?? null
    const req = (tls === null ? httpRequest(options, onResponse) : httpsRequest({ ...options, ...tlsOptions(tls) }, onResponse))
    function onResponse (res: IncomingMessage): void {
      res.on('error', () => finish(res.statusCode ?? null, 'response aborted'))
      res.on('end', () => finish(res.statusCode ?? null, null))
      res.resume()
    }
    // One deadline for connect, headers and body together.
    const timer = setTimeout(() => {
      finish(null, `timeout after ${settings.timeout} ms`)
      req.destroy()
    }, settings.timeout)
    req.on('error', (err: NodeJS.ErrnoException) => finish(null, isTlsFailure(err.code) ? `TLS: ${err.code ?? ''} (TETHER_ERR_UPSTREAM_TLS)` : err.code ?? err.message))
    req.end()
  })
}

/**
 * Schedules checks for every target; each result goes to `report` with the target it is about.
 *
 * @example
 * ```ts
 * const checker = new ActiveHealthChecker<UpstreamNode>(settings, (node, result) => pool.reportCheck(node, result))
 * checker.sync(pool.nodes)
 * checker.stop()
 * ```
 */
export class ActiveHealthChecker<T extends UpstreamTarget> {
  #settings: ResolvedHealthCheck
  readonly #report: (target: T, result: CheckResult) => void
  /** One schedule per checked target; replaced (not mutated) when settings change. */
  readonly #runs = new Map<T, Run>()
  #stopped = false

  constructor (settings: ResolvedHealthCheck, report: (target: T, result: CheckResult) => void) {
    this.#settings = settings
    this.#report = report
  }

  /** Check exactly `targets` from now on: start new ones, stop those that left. */
  sync (targets: readonly T[], settings: ResolvedHealthCheck = this.#settings): void {
    const changed = settings !== this.#settings
    this.#settings = settings
    const wanted = new Set(settings.enabled ? targets : [])
    for (const [node, run] of this.#runs) {
      if (!wanted.has(node) || changed) { clearTimeout(run.timer); this.#runs.delete(node) }
    }
    if (this.#stopped) return
    for (const node of wanted) {
      // Spread first checks over a short window so that N nodes are not probed in one burst.
      if (!this.#runs.has(node)) this.#start(node, Math.random() * Math.min(settings.interval, 250))
    }
  }

  stop (): void {
    this.#stopped = true
    for (const run of this.#runs.values()) clearTimeout(run.timer)
    this.#runs.clear()
  }

  #start (node: T, delay: number): void {
    const run: Run = { timer: undefined, due: performance.now() + delay, started: 0, reported: 0 }
    this.#runs.set(node, run)
    this.#plan(node, run)
  }

  /**
   * Plan the next check of `node` at `run.due`. Each check plans the next one `interval` after
   * its own due time, before it starts (not after it ends: a check that waits out its timeout
   * must not delay the next). A check that ends after a later one (possible when the timeout
   * equals the interval, or a timer fires late on a loaded machine) is stale and dropped, so
   * the pool hears results in the order the checks started.
   */
  #plan (node: T, run: Run): void {
    run.timer = setTimeout(() => {
      const settings = this.#settings
      const seq = ++run.started
      // Fixed rate from the planned times; after a long stall, start afresh rather than catch up.
      run.due = Math.max(run.due + settings.interval, performance.now())
      this.#plan(node, run)
      checkOnce(node, settings).then((result) => {
        if (this.#runs.get(node) !== run || seq < run.reported) return
        run.reported = seq
        this.#report(node, result)
      }, () => {})
    }, Math.max(0, run.due - performance.now()))
    run.timer.unref()
  }
}

/** The schedule of one target's checks. */
interface Run {
  timer: NodeJS.Timeout | undefined
  /** When the next check is due (monotonic ms). */
  due: number
  /** Checks started, and the sequence number of the last one reported. */
  started: number
  reported: number
}
