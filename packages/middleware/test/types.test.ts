// Type tests: compile fixtures against the built package's declarations, as a user would.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { createRequire } from 'node:module'

const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc')

t.test('SessionData declaration merging types req.session for Fastify', async (t) => {
  const project = fileURLToPath(new URL('./types/tsconfig.json', import.meta.url))
  const res = spawnSync(process.execPath, [tsc, '-p', project], { encoding: 'utf8' })
  t.equal(res.stdout + res.stderr, '', 'no type errors, and every @ts-expect-error was an error')
  t.equal(res.status, 0)
})
