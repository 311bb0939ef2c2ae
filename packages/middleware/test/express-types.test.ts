// Type tests for the Express middleware: `tsc --noEmit` on a fixture that uses the built
// package as a user would (declaration merging of SessionData and of Express's Request).
import t from 'tap'
import { spawn } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createRequire } from 'node:module'

const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc')
const types = fileURLToPath(new URL('./types/', import.meta.url))
const root = fileURLToPath(new URL('../../../', import.meta.url))

function compile (project: string): Promise<{ status: number | null, output: string }> {
  return new Promise((resolve, reject) => {
    // Paths in the messages are relative to the project's directory.
    const child = spawn(process.execPath, [tsc, '--noEmit', '-p', project], { cwd: dirname(project), stdio: ['ignore', 'pipe', 'pipe'] })
    let output = ''
    child.stdout.on('data', (d: Buffer) => { output += d.toString() })
    child.stderr.on('data', (d: Buffer) => { output += d.toString() })
    child.once('error', reject)
    child.once('close', (status) => resolve({ status, output }))
  })
}

// A copy of the fixture without the directive on one wrong assignment, in a git-ignored
// directory of the repository so 'express' and '@tether/middleware' resolve as for the fixture.
const DIRECTIVE = '  // @ts-expect-error visits is a number'
const lines = readFileSync(join(types, 'express-usage.ts'), 'utf8').split('\n')
const at = lines.indexOf(DIRECTIVE)
mkdirSync(join(root, 'test-artifacts'), { recursive: true })
const dir = mkdtempSync(join(root, 'test-artifacts', 'express-types-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))
writeFileSync(join(dir, 'express-usage.ts'), lines.filter((_, i) => i !== at).join('\n'))
writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({
  extends: join(root, 'tsconfig.base.json'),
  compilerOptions: { noEmit: true, composite: false, incremental: false, declaration: false, declarationMap: false },
  files: ['express-usage.ts']
}))

// Both compilations run at once; each takes seconds.
const fixture = compile(join(types, 'express.tsconfig.json'))
const wrong = compile(join(dir, 'tsconfig.json'))

t.test('req.session and req.sessionID are typed by declaration merging', async (t) => {
  const res = await fixture
  t.equal(res.output, '', 'no type errors, and every @ts-expect-error was an error')
  t.equal(res.status, 0)
})

t.test('assigning the wrong type to a SessionData key fails with the expected error', async (t) => {
  t.ok(at > 0, 'the directive is in the fixture')
  const res = await wrong
  t.equal(res.status, 2, 'tsc reports errors')
  const errors = res.output.split('\n').filter((l) => l.includes('error TS'))
  t.same(errors, [`express-usage.ts(${at + 1},3): error TS2322: Type 'string' is not assignable to type 'number'.`], 'exactly that assignment, with that message')
})
