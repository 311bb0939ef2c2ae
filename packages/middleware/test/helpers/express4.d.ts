// Express 4 is installed under the npm alias `express4`, without typings of its own. The surface
// the tests use (app, req, res, middleware signatures) is the same in 4 and 5, so the alias
// borrows Express 5's types.
declare module 'express4' {
  import express from 'express'
  export default express
}
