/**
 * Runs `scripts/start.mjs` (what `npm start` runs) as a process, for the demo and browser
 * tests. Every process it starts inherits a random tag in its environment, so a test can find
 * (in /proc) and stop exactly those processes, and prove that none survived.
 */
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { readdirSync, readFileSync } from 'node:fs'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'
import { childEnv } from './net.js'

const START = fileURLToPath(new URL('../../scripts/start.mjs', import.meta.url))

import type { Test } from 'tap'

interface Teardownable { teardown (fn: () => unknown): void }

/** Pids of live processes whose environment carries `TETHER_TEST_TAG=<tag>`. */
export function tagged (tag: string): number[] {
  const needle = `TETHER_TEST_TAG=${tag}\0`
  const pids: number[] = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      if (!readFileSync(`/proc/${entry}/environ`, 'latin1').includes(needle)) continue
      // A zombie has already exited; only its parent's wait() is missing.
      if (!/^State:\s+Z/m.test(readFileSync(`/proc/${entry}/status`, 'latin1'))) pids.push(Number(entry))
    } catch { /* exited meanwhile */ }
  }
  return pids
}

/** Assert that no tagged process is left, allowing up to 5 s for exits in progress. */
export async function noSurvivors (t: Test, tag: string): Promise<void> {
  const deadline = Date.now() + 5000
  let left = tagged(tag)
  while (left.length > 0 && Date.now() < deadline) {
    await sleep(50)
    left = tagged(tag)
  }
  t.same(left, [], 'no process it started is left running')
}

export interface Started {
  readonly child: ChildProcess
  readonly tag: string
  stdout (): string
  stderr (): string
  readonly exit: Promise<{ code: number | null, signal: NodeJS.Signals | null }>
}

/** Spawn start.mjs with `args`; at teardown it and everything it started are killed. */
export function start (t: Teardownable, args: string[], env: Record<string, string> = {}): Started {
  const tag = randomBytes(6).toString('hex')
  const child = spawn(process.execPath, [START, ...args], { env: childEnv({ REDIS_URL: '', ...env, TETHER_TEST_TAG: tag }), stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout!.on('data', (d) => { stdout += String(d) })
  child.stderr!.on('data', (d) => { stderr += String(d) })
  const exit = new Promise<{ code: number | null, signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })))
  t.teardown(async () => {
    // Whatever the test did, nothing it started outlives it.
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM')
      await Promise.race([exit, sleep(10_000)])
    }
    for (const pid of tagged(tag)) { try { process.kill(pid, 'SIGKILL') } catch {} }
  })
  return { child, tag, stdout: () => stdout, stderr: () => stderr, exit }
}

/** Wait for start.mjs to exit, at most `ms`. */
export async function exited (s: Started, ms: number): Promise<{ code: number | null, signal: NodeJS.Signals | null }> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`start.mjs did not exit within ${ms} ms; stderr: ${s.stderr()}`)), ms)
  })
  try { return await Promise.race([s.exit, late]) } finally { clearTimeout(timer) }
}

export interface RunningCluster extends Started {
  /** The balancer's URL, ending in `/`. */
  readonly url: string
  /** The status page's URL, ending in `/`. */
  readonly statusUrl: string
  /** The admin API's base URL (no trailing slash). */
  readonly adminUrl: string
  readonly nodes: ReadonlyArray<{ name: string, url: string, pid: number }>
}

/** Start the cluster and wait (at most 60 s) until it prints its URLs. */
export async function up (t: Teardownable, args: string[], env: Record<string, string> = {}): Promise<RunningCluster> {
  const s = start(t, args, env)
  const lines = createInterface({ input: s.child.stdout! })
  const printed = await new Promise<string>((resolve, reject) => {
    let text = ''
    const timer = setTimeout(() => reject(new Error(`start.mjs printed no "Ctrl-C" line within 60 s; stderr: ${s.stderr()}`)), 60_000)
    lines.on('line', (line) => {
      text += line + '\n'
      if (line.startsWith('Ctrl-C')) { clearTimeout(timer); resolve(text) }
    })
    s.exit.then(({ code }) => { clearTimeout(timer); reject(new Error(`start.mjs exited with ${code}: ${s.stderr()}`)) }, () => {})
  })
  const url = /^ {2}open {4}(\S+)/m.exec(printed)?.[1]
  const statusUrl = /^ {2}status {2}(\S+)$/m.exec(printed)?.[1]
  const nodes = [...printed.matchAll(/^ {2}(node\d) +(\S+) +pid (\d+)$/gm)].map((m) => ({ name: m[1]!, url: m[2]!, pid: Number(m[3]) }))
  if (url === undefined || statusUrl === undefined || nodes.length !== 3) throw new Error(`unexpected start.mjs output:\n${printed}`)
  return { ...s, url, statusUrl, adminUrl: statusUrl.replace(/\/$/, ''), nodes }
}
