// Benchmark baseline: the same Express 5 app without any session (the framework's ceiling).
import express from 'express'

const app = express()
app.get('/read', (_req, res) => { res.json({ user: null }) })
app.listen(Number(process.env.PORT), '127.0.0.1')
process.on('SIGINT', () => process.exit(0))
process.on('SIGTERM', () => process.exit(0))
