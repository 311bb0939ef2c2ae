// The routes every Express benchmark app serves (the Redis suite and the SQL/memcached one), the
// same for Tether and its peers: a read, a read-modify-write (what express-session apps do to
// count), the count; then listen on PORT.
export function serveRoutes (app) {
  app.get('/read', (req, res) => { res.json({ user: req.session.user ?? null }) })
  app.get('/write', (req, res) => { req.session.user = 'ada'; req.session.n = (req.session.n ?? 0) + 1; res.json({ n: req.session.n }) })
  app.get('/n', (req, res) => { res.json({ n: req.session.n ?? null }) })
  app.listen(Number(process.env.PORT), '127.0.0.1')
  process.on('SIGINT', () => process.exit(0))
  process.on('SIGTERM', () => process.exit(0))
}
