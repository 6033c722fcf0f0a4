"""Where a request goes: the routing rules, the failover chain, each backend's breaker, and the request's summary."""
