/**
 * Starts app processes (separate OS processes, as cluster nodes are) and stops exactly them.
 */
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { childEnv, freePort, request, waitFor } from './net.js'
import { kill as killChild, reap } from './reaper.js'

export interface AppProcess {
  readonly url: string
  readonly port: number
  readonly child: ChildProcess
  /** stderr and stdout seen so far (for failure messages). */
  output (): string
  /** SIGKILL: what a crashed node looks like. */
  kill (): Promise<void>
}

interface Teardownable { teardown (fn: () => unknown): void }

/** Spawn `node <script>` with `env` plus a free PORT; resolves once it answers /health. */
export async function startApp (t: Teardownable, script: string, env: Record<string, string>): Promise<AppProcess> {
  const port = await freePort()
  const path = fileURLToPath(new URL(script, import.meta.url))
  const child = spawn(process.execPath, [path], { env: childEnv({ ...env, PORT: String(port) }), stdio: ['ignore', 'pipe', 'pipe'] })
  reap(child)
  let output = ''
  child.stdout!.on('data', (d) => { output = (output + String(d)).slice(-8000) })
  child.stderr!.on('data', (d) => { output = (output + String(d)).slice(-8000) })
  const kill = (): Promise<void> => killChild(child)
  t.teardown(kill)
  const url = `http://127.0.0.1:${port}`
  try {
    await waitFor(async () => {
      if (child.exitCode !== null) throw new Error(`app exited with ${child.exitCode}: ${output}`)
      try { return (await request(`${url}/health`, { timeoutMs: 1000 })).status === 200 } catch { return false }
    }, 60_000, `${script} on port ${port}`)
  } catch (err) {
    await kill()
    throw err
  }
  return { url, port, child, output: () => output, kill }
}
