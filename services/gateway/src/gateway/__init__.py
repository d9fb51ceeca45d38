"""The gateway: REST + WebSocket for browsers and the CLI in front of the session and quote gRPC services."""
