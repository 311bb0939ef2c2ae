/** @tether/balancer: see packages/balancer/README. */
export {}
