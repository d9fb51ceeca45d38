"""Chaos under load: many concurrent swaps in both directions while a seeded nemesis breaks the stack, then a
checker of the invariants over everything that happened (docs/faults.md, "Chaos under load").

    python -m swap_devnet.chaos --seed 7 --minutes 2        # make chaos SEED=7 MINUTES=2

- `workload`: keeps swaps in flight against two session replicas (gRPC) and the gateway (REST): swaps that
  complete, that the maker cancels, whose maker never locks, and whose destination lock is refused.
- `nemesis`: at random times, for random lengths: kill -9 of any service or replica, a Redis restart, a chain
  RPC cut, delayed or dropped chain-service streams, BASE reorgs, stalled NEAR blocks, clock skew.
- `checker`: when the nemesis stops and every window has passed, reads both chains and the sessions: every
  session ended, every account's balance explained to the unit, no secret of a refunded swap on chain, no
  step sent twice, every lock ended.
"""
