/**
 * Run a fixture app as its own OS process (a cluster node), TypeScript and all, and stop
 * exactly that process, by pid, when the test ends.
 */
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { childEnv } from '../../../../test/helpers/net.js'

export interface NodeProcess {
  readonly url: string
  readonly pid: number
  output (): string
}

interface Teardownable { teardown (fn: () => unknown): void }

// The same TypeScript loader tap runs the tests with, so fixtures import src/ directly. It
// compiles on the fly, which takes seconds on a loaded 2-core machine: hence the long start-up bound.
const loader = `--import=${import.meta.resolve('@tapjs/typescript/import')}`

/** Spawn `fixtures/<name>.ts` with `env`; resolves once it prints `listening <port>`. */
export async function spawnNode (t: Teardownable, name: string, env: Record<string, string>): Promise<NodeProcess> {
  const script = fileURLToPath(new URL(`../fixtures/${name}.ts`, import.meta.url))
  const child = spawn(process.execPath, [loader, '--enable-source-maps', script], {
    env: childEnv(env),
    stdio: ['ignore', 'pipe', 'pipe']
  })
  const pid = child.pid
  if (pid === undefined) throw new Error(`could not spawn ${name}`)
  let output = ''
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      process.kill(pid, 'SIGKILL')
      await exited
    }
  })
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start within 60 s:\n${output}`)), 60_000)
    const onData = (d: Buffer): void => {
      output = (output + d.toString()).slice(-8000)
      const m = /listening (\d+)/.exec(output)
      if (m !== null) { clearTimeout(timer); resolve(Number(m[1])) }
    }
    child.stdout.on('data', onData)
    child.stderr.on('data', onData)
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`${name} exited with ${String(code)}:\n${output}`)) })
  })
  return { url: `http://127.0.0.1:${port}`, pid, output: () => output }
}
