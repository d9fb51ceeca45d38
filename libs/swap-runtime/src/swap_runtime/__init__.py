"""What every swap service shares: gRPC server bootstrap, JSON logs with request context, rich errors."""
