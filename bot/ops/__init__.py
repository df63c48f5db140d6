"""Operating Shepherd: metrics, health checks, structured logs, the ops HTTP server."""
