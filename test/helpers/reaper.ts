/**
 * Children a test process started are killed when it ends, however it ends. Teardowns do it on
 * a normal finish; this covers the rest: tap killing a test that ran past its timeout (SIGTERM)
 * or a crash, which would otherwise leave a private redis-server or app node running.
 */
import type { ChildProcess } from 'node:child_process'

const children = new Set<ChildProcess>()
let installed = false

function killAll (): void {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) {
      try { child.kill('SIGKILL') } catch {}
    }
  }
  children.clear()
}

/** Kill `child` if this process exits before it does. */
export function reap (child: ChildProcess): ChildProcess {
  children.add(child)
  child.once('exit', () => children.delete(child))
  if (installed) return child
  installed = true
  process.once('exit', killAll)
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
    process.once(signal, () => {
      killAll()
      process.exit(128 + (signal === 'SIGINT' ? 2 : signal === 'SIGHUP' ? 1 : 15))
    })
  }
  return child
}

/** SIGKILL `child` (what a crash looks like) and resolve once it has exited. */
export async function kill (child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise((resolve) => child.once('exit', resolve))
  child.kill('SIGKILL')
  await exited
}
