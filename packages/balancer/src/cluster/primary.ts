/**
 * The supervisor: the primary process of `tether-balancer --workers N` (N > 1). It serves no
 * traffic. It forks the workers, which share the listening socket through `node:cluster`, and
 * replaces one that dies (with a growing delay, so a crash loop does not spin). It is the one
 * owner of shared state (`state.ts`): health checks run here once and every worker gets the
 * same verdicts; admin changes and reloads are validated here and sent to every worker; the
 * admin API answers for the whole balancer by asking the workers (`merge.ts`, and prom-client's
 * `AggregatorRegistry` for `/metrics`). It generates the secrets every worker must share: the
 * TLS session-ticket secret (a ticket from one worker resumes on another) and, when the
 * configuration has none, the sticky secret.
 *
 * Why `node:cluster` and not `SO_REUSEPORT`: Node 20 (the oldest Node this package supports)
 * has no `reusePort` option on `net.Server#listen` (it came in Node 22.12/23.1), so separate
 * processes cannot bind the same port without it.
 */
import cluster, { type Worker } from 'node:cluster'
import { randomBytes } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import { AggregatorRegistry } from 'prom-client'
import { AdminServer, type WorkerInfo } from '../admin/server.js'
import type { StatsReport } from '../admin/timeline.js'
import { resolveConfig } from '../config/resolve.js'
import type { ResolvedConfig } from '../config/types.js'
import { TetherBalancerError, errorCodes, formatIssue, type ErrorCode } from '../errors.js'
import { describeListen } from '../frontend/frontend.js'
import { createLogger, type Logger } from '../log.js'
import type { NodeSnapshot } from '../pool/snapshot.js'
import { mergeNodes, mergeReports } from './merge.js'
import { isTetherMessage, type FromWorker, type ToWorker } from './messages.js'
import { SharedState } from './state.js'

/**
 * How the primary hands connections to workers: SCHED_RR, chosen by measurement. On the 2-core
 * machine this was written on, heavily loaded by other jobs (load average 13-15), `wrk -t2
 * -c64 -d5s` through `--workers 2` to 3 tiny upstreams (bench/lib/tiny-upstream.mjs), runs
 * interleaved: SCHED_RR 6,104 / 8,558 / 8,948 / 6,571 / 7,464 requests/s (p99 327 / 109 / 101
 * / 100 / 142 ms); SCHED_NONE 9,940 / 3,532 / 5,793 (p99 62 / 695 / 724 ms; two more runs did
 * not start in time). The throughput ranges overlap on so loaded a machine; what decided is
 * that RR's p99 stayed near 100 ms and split requests about evenly between the workers
 * (22,226 / 23,652), where SCHED_NONE, leaving it to the kernel which worker wakes, put 2.6
 * times as many on one (8,166 / 21,503) and had 700 ms tails. Re-measure on a quiet machine
 * (`npm run bench -- balancer`). `NODE_CLUSTER_SCHED_POLICY` (`rr` or `none`) overrides it.
 */
const SCHEDULING = cluster.SCHED_RR

/** A worker that lived at least this long before dying resets the back-off. */
const STABLE_MS = 10_000
const FIRST_DELAY_MS = 100
const MAX_DELAY_MS = 10_000
/** How long the admin API waits for a worker's counters before answering without them. */
const STATS_TIMEOUT_MS = 1000
/** How long the workers have to start listening. */
const START_TIMEOUT_MS = 30_000

/**
 * The back-off of replacements: a worker that lived `STABLE_MS` resets it; each one that died
 * younger doubles the delay, from `FIRST_DELAY_MS` up to `MAX_DELAY_MS`, so a crash loop (a
 * bad certificate, a port taken) costs a fork every 10 s, not a spinning CPU.
 *
 * @example
 * ```ts
 * replacementDelay(0, 60_000)   // { crashes: 1, delayMs: 100 }: first death after a long life
 * replacementDelay(3, 50)       // { crashes: 4, delayMs: 800 }
 * ```
 */
export function replacementDelay (crashes: number, livedMs: number): { crashes: number, delayMs: number } {
  const next = livedMs >= STABLE_MS ? 1 : crashes + 1
  return { crashes: next, delayMs: Math.min(MAX_DELAY_MS, FIRST_DELAY_MS * 2 ** (next - 1)) }
}

/**
 * What the command gives the supervisor.
 *
 * @example
 * ```ts
 * const options: PrimaryOptions = { raw, configFile: 'lb.yaml', workers: 4, read: async () => await loadConfigFile('lb.yaml'), fail }
 * ```
 */
export interface PrimaryOptions {
  /** The configuration as read (file and flags), and the file's name. */
  readonly raw: unknown
  readonly configFile: string | undefined
  readonly workers: number
  /** Read the file and flags again (SIGHUP). */
  readonly read: () => Promise<unknown>
  /** Print an error and exit with the command's status for it. */
  readonly fail: (err: unknown) => never
}

interface Member {
  readonly worker: Worker
  readonly startedAt: number
  readonly startedWall: Date
  ready: boolean
}

/**
 * Run this process as the supervisor of `options.workers` workers.
 *
 * @example
 * ```ts
 * if (workers > 1) await runPrimary({ raw, configFile, workers, read, fail })
 * ```
 */
export async function runPrimary (options: PrimaryOptions): Promise<void> {
  const supervisor = new Supervisor(options)
  await supervisor.start()
}

class Supervisor {
  readonly #options: PrimaryOptions
  #raw: unknown
  #config: ResolvedConfig
  readonly #log: Logger
  readonly #state: SharedState
  readonly #members = new Map<number, Member>()
  readonly #ticketSecret = randomBytes(32).toString('base64')
  readonly #stickySecret: string
  readonly #aggregator = new AggregatorRegistry()
  readonly #startedAt = new Date()
  #admin: AdminServer | null = null
  #port = 0
  #stopping = false
  #started = false
  /** Unexpected exits in a row of workers that died young: the back-off's exponent. */
  #crashes = 0
  #nextRequest = 0
  readonly #pending = new Map<number, (reply: Extract<FromWorker, { t: 'tether:stats' }>) => void>()

  constructor (options: PrimaryOptions) {
    this.#options = options
    this.#raw = options.raw
    try {
      this.#config = resolveConfig(options.raw, options.configFile === undefined ? {} : { file: options.configFile })
    } catch (err) {
      options.fail(err)
    }
    this.#log = createLogger(this.#config.log.level)
    this.#stickySecret = this.#config.sticky.secrets[0] ?? randomBytes(32).toString('base64url')
    if (this.#config.sticky.enabled && this.#config.sticky.secretGenerated) {
      this.#log.warn('sticky.secret is not set: using a random one (the same in every worker), so sticky cookies will not survive a restart')
    }
    this.#state = new SharedState(this.#config, {
      verdict: (node, result) => this.#broadcast({ t: 'tether:check', node, result }),
      held: (node, ms, reason) => this.#broadcast({ t: 'tether:hold', node, ms, reason }),
      changed: (node, update) => this.#broadcast({ t: 'tether:set-node', node, update }),
      transition: (t) => {
        const fields = { node: t.node, change: t.field, from: t.from, to: t.to, reason: t.reason }
        if (t.field === 'health' && t.to === 'down') this.#log.warn(fields, `node ${t.node} is down`)
        else this.#log.info(fields, `node ${t.node} ${t.field}: ${t.from} -> ${t.to}`)
      }
    })
  }

  async start (): Promise<void> {
    if (process.env.NODE_CLUSTER_SCHED_POLICY === undefined) cluster.schedulingPolicy = SCHEDULING
    cluster.on('message', (worker, message: unknown) => this.#onMessage(worker, message))
    cluster.on('exit', (worker, code, signal) => this.#onExit(worker, code, signal))
    // Before the first fork: a signal during start-up must not hit the default action (exit).
    process.on('SIGTERM', () => this.#stop('SIGTERM'))
    process.on('SIGINT', () => this.#stop('SIGINT'))
    process.on('SIGHUP', () => {
      if (!this.#started) { this.#log.warn('SIGHUP while the workers start: ignored, send it again once listening'); return }
      this.#reload().catch(() => {})
    })
    this.#state.start()
    const ready = new Promise<void>((resolve, reject) => {
      this.#onAllReady = resolve
      this.#onStartFailed = reject
      setTimeout(() => reject(new TetherBalancerError('TETHER_ERR_WORKER_EXIT', `the workers did not start listening within ${START_TIMEOUT_MS} ms`)), START_TIMEOUT_MS).unref()
    })
    for (let i = 0; i < this.#options.workers; i++) this.#fork()
    try {
      await ready
      await this.#listenAdmin()
    } catch (err) {
      for (const m of this.#members.values()) m.worker.process.kill('SIGKILL')
      this.#options.fail(err)
    }
    this.#started = true
    const address = this.#config.listen
    this.#log.info({ listen: describeListen({ host: address.host, port: this.#port }), tls: address.tls !== null, admin: this.#adminPort, workers: this.#options.workers, engine: this.#config.engine, algorithm: this.#config.algorithm, nodes: this.#config.upstreams.length }, 'balancer listening')
  }

  #onAllReady: () => void = () => {}
  #onStartFailed: (err: unknown) => void = () => {}
  #adminPort: number | undefined

  #fork (): void {
    const worker = cluster.fork()
    this.#members.set(worker.id, { worker, startedAt: performance.now(), startedWall: new Date(), ready: false })
  }

  #send (worker: Worker, message: ToWorker): void {
    if (worker.isConnected()) worker.send(message)
  }

  #broadcast (message: ToWorker): void {
    for (const m of this.#members.values()) this.#send(m.worker, message)
  }

  #onMessage (worker: Worker, message: unknown): void {
    if (!isTetherMessage<FromWorker>(message)) return
    const member = this.#members.get(worker.id)
    if (member === undefined) return
    switch (message.t) {
      case 'tether:hello': {
        this.#send(worker, { t: 'tether:start', config: this.#raw, configFile: this.#options.configFile ?? null, ticketSecret: this.#ticketSecret, stickySecret: this.#stickySecret, workers: this.#options.workers })
        // What happened before this worker was born: admin changes, nodes found down.
        const { changes, down, held } = this.#state.catchUp()
        for (const c of changes) this.#send(worker, { t: 'tether:set-node', node: c.node, update: c.update })
        for (const d of down) this.#send(worker, { t: 'tether:check', node: d.node, result: d.result })
        for (const h of held) this.#send(worker, { t: 'tether:hold', node: h.node, ms: h.ms, reason: 'passive: held by the supervisor when this worker started' })
        return
      }
      case 'tether:ready':
        member.ready = true
        this.#port = message.port
        if (this.#started) this.#log.info({ worker: worker.id, pid: worker.process.pid }, 'worker replaced')
        else if ([...this.#members.values()].every((m) => m.ready)) this.#onAllReady()
        return
      case 'tether:failed': {
        const code = message.code in errorCodes ? message.code as ErrorCode : 'TETHER_ERR_WORKER_EXIT'
        const err = new TetherBalancerError(code, message.lines.join('; '))
        if (!this.#started) { this.#onStartFailed(err); return }
        this.#log.error({ code: message.code, worker: worker.id, issues: message.lines }, 'a replacement worker could not start')
        return
      }
      case 'tether:failure':
        this.#state.observeFailure(message.node, message.reason)
        return
      case 'tether:stats':
        this.#pending.get(message.id)?.(message)
    }
  }

  #onExit (worker: Worker, code: number | null, signal: string | null): void {
    const member = this.#members.get(worker.id)
    this.#members.delete(worker.id)
    if (this.#stopping) {
      if (this.#members.size === 0) this.#finish()
      return
    }
    if (!this.#started) {
      this.#onStartFailed(new TetherBalancerError('TETHER_ERR_WORKER_EXIT', `worker ${worker.id} exited while starting (code ${String(code)}, signal ${String(signal)})`))
      return
    }
    const lived = member === undefined ? 0 : performance.now() - member.startedAt
    const { crashes, delayMs: delay } = replacementDelay(this.#crashes, lived)
    this.#crashes = crashes
    this.#log.error({ code: 'TETHER_ERR_WORKER_EXIT', worker: worker.id, pid: worker.process.pid, exitCode: code, signal, livedMs: Math.round(lived), replaceInMs: delay }, 'a worker exited: replacing it')
    setTimeout(() => { if (!this.#stopping) this.#fork() }, delay)
  }

  /** Every ready worker's counters and timeline; one that does not answer in time is left out. */
  async #collect (since: number | null): Promise<Array<Extract<FromWorker, { t: 'tether:stats' }> & { worker: Member }>> {
    const asks = [...this.#members.values()].filter((m) => m.ready && m.worker.isConnected()).map((member) => new Promise<(Extract<FromWorker, { t: 'tether:stats' }> & { worker: Member }) | null>((resolve) => {
      const id = ++this.#nextRequest
      const timer = setTimeout(() => { this.#pending.delete(id); resolve(null) }, STATS_TIMEOUT_MS)
      this.#pending.set(id, (reply) => { clearTimeout(timer); this.#pending.delete(id); resolve({ ...reply, worker: member }) })
      this.#send(member.worker, { t: 'tether:stats-req', id, since })
    }))
    const replies = await Promise.all(asks)
    return replies.filter((r) => r !== null)
  }

  async #nodes (): Promise<NodeSnapshot[]> {
    const replies = await this.#collect(Math.floor(Date.now() / 1000))
    return mergeNodes(this.#state.snapshot(), replies.map((r) => r.nodes))
  }

  async #stats (since: number | null): Promise<StatsReport> {
    const names = this.#config.upstreams.map((u) => u.name)
    const replies = await this.#collect(since)
    const merged = mergeReports(replies.map((r) => r.report), names)
    if (merged === undefined) throw new TetherBalancerError('TETHER_ERR_WORKER_EXIT', 'no worker answered')
    return merged
  }

  async #workers (): Promise<WorkerInfo[]> {
    const replies = await this.#collect(Math.floor(Date.now() / 1000))
    return replies.map((r) => ({
      id: r.worker.worker.id,
      pid: r.worker.worker.process.pid ?? 0,
      startedAt: r.worker.startedWall.toISOString(),
      requests: r.nodes.reduce((sum, n) => sum + n.requests, 0),
      activeConnections: r.nodes.reduce((sum, n) => sum + n.activeConnections, 0)
    }))
  }

  async #listenAdmin (): Promise<void> {
    const settings = this.#config.admin
    if (settings === null) return
    this.#admin = new AdminServer({
      nodes: async () => await this.#nodes(),
      setNode: async (name, update) => {
        const own = this.#state.setNode(name, update)
        return (await this.#nodes()).find((n) => n.name === name) ?? own
      },
      metrics: async () => ({ contentType: this.#aggregator.contentType, body: await this.#aggregator.clusterMetrics() }),
      settings: () => this.#config.admin ?? settings,
      pageInfo: () => ({ algorithm: this.#config.algorithm, engine: this.#config.engine, sticky: this.#config.sticky.enabled, listen: describeListen({ host: this.#config.listen.host, port: this.#port }), startedAt: this.#startedAt }),
      stats: async (since) => await this.#stats(since),
      workers: async () => await this.#workers(),
      log: this.#log
    })
    this.#adminPort = await this.#admin.listen(settings.listen)
    const host = settings.listen.host
    if (settings.token === null && host !== '127.0.0.1' && host !== '::1' && host !== 'localhost') {
      this.#log.warn({ admin: describeListen(settings.listen) }, 'the admin API listens beyond loopback without a token')
    }
  }

  /** SIGHUP: read and check the configuration here, then send it to every worker. */
  async #reload (): Promise<void> {
    if (this.#stopping) return
    const file = this.#options.configFile
    let raw: unknown
    let config: ResolvedConfig
    try {
      raw = await this.#options.read()
      config = resolveConfig(raw, { generatedSecret: this.#stickySecret, ...(file === undefined ? {} : { file }) })
    } catch (err) {
      const issues = err instanceof TetherBalancerError && err.issues.length > 0 ? err.issues.map(formatIssue) : [(err as Error).message]
      this.#log.error({ code: 'TETHER_ERR_RELOAD', cause: err instanceof TetherBalancerError ? err.code : undefined, issues }, 'reload rejected: the previous configuration stays in force')
      return
    }
    if (config.workers !== this.#config.workers) this.#log.warn({ from: this.#config.workers, to: config.workers }, 'workers changes need a restart; keeping the current number')
    // As one process does: the admin address stays until a restart (token and hosts apply).
    const admin = config.admin !== null && this.#config.admin !== null ? { ...config.admin, listen: this.#config.admin.listen } : config.admin
    this.#config = { ...config, admin }
    this.#raw = raw
    this.#state.apply(config)
    this.#broadcast({ t: 'tether:reload', config: raw, configFile: file ?? null })
    this.#log.info({ nodes: config.upstreams.map((u) => u.name), workers: this.#members.size }, 'configuration sent to every worker')
  }

  #stop (signal: string): void {
    if (this.#stopping) {
      this.#log.warn({ signal }, 'second signal: exiting now')
      for (const m of this.#members.values()) m.worker.process.kill('SIGKILL')
      process.exit(1)
    }
    this.#stopping = true
    this.#log.info({ signal, workers: this.#members.size }, 'stopping: every worker stops accepting and finishes its in-flight requests')
    this.#state.stop()
    this.#broadcast({ t: 'tether:stop' })
    // A worker that does not finish in time is cut, as one process cuts its connections.
    setTimeout(() => {
      for (const m of this.#members.values()) m.worker.process.kill('SIGKILL')
    }, this.#config.timeouts.shutdown + 5000).unref()
    if (this.#members.size === 0) this.#finish()
  }

  #finish (): void {
    const done = (): void => {
      this.#log.info('balancer closed')
      process.exit(0)
    }
    if (this.#admin === null) done()
    else this.#admin.close().then(done, done)
  }
}
