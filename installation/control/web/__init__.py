"""The web remote: a status page for phones, an HTTP API on the conductor, /healthz for uptime
checks and /metrics for Prometheus, served by ``server.WebServer`` beside OSC (docs/remote.md).
"""
