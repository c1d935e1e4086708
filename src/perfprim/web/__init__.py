"""Web middleware: per-route latency, SLOs, metrics, and an RFC 9111 HTTP response cache."""
