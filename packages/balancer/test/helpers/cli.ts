// The tether-balancer command as a child process: the built dist/cli.js (refused when older
// than src/), its JSON log lines parsed as they come, and its exit.
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { waitFor } from './http.js'
import type { TestLike } from './upstreams.js'

/** The built command. */
export const CLI = fileURLToPath(new URL('../../dist/cli.js', import.meta.url))

/** Throw unless dist/ is built from the current src/: a stale build would test yesterday's code. */
export function assertBuilt (): void {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run npm run build first`)
  const src = fileURLToPath(new URL('../../src', import.meta.url))
  const newest = Math.max(...readdirSync(src, { recursive: true }).map((f) => statSync(join(src, String(f))).mtimeMs))
  // tsc -b does not rewrite unchanged outputs, but it does update its build info.
  const built = statSync(fileURLToPath(new URL('../../dist/.tsbuildinfo', import.meta.url))).mtimeMs
  if (newest > built) throw new Error('dist/ is older than src/: run npm run build first')
}

/** A running command. */
export interface Run {
  child: ChildProcess
  lines: Array<Record<string, unknown>>
  stdout: () => string
  stderr: () => string
  exit: Promise<number | null>
}

/** Start the command with `args`; it is killed (its process group) when the test ends. */
export function run (t: TestLike, args: string[], env: Record<string, string> = {}): Run {
  const child = spawn(process.execPath, [CLI, ...args], { detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } })
  let out = ''
  let err = ''
  const lines: Array<Record<string, unknown>> = []
  child.stdout?.on('data', (chunk: Buffer) => {
    out += chunk.toString()
    const parts = out.split('\n')
    for (const line of parts.slice(lines.length, -1)) {
      try { lines.push(JSON.parse(line) as Record<string, unknown>) } catch { lines.push({ text: line }) }
    }
  })
  child.stderr?.on('data', (chunk: Buffer) => { err += chunk.toString() })
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
      try { process.kill(-child.pid, 'SIGKILL') } catch { /* gone */ }
    }
  })
  return { child, lines, stdout: () => out, stderr: () => err, exit }
}

/** Wait for its "balancer listening" line: the ports it bound. */
export async function listening (r: Run): Promise<{ port: number, admin: number | undefined }> {
  await waitFor(() => r.lines.some((l) => l.msg === 'balancer listening') || r.child.exitCode !== null, 10_000, 'the balancer to listen')
  const line = r.lines.find((l) => l.msg === 'balancer listening')
  if (line === undefined) throw new Error(`did not start: ${r.stderr()}`)
  return { port: Number(String(line.listen).split(':').pop()), admin: line.admin as number | undefined }
}
