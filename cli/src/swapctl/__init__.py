"""swapctl: quotes, swaps and their live progress through the swap gateway's REST and WebSocket API."""

__version__ = "0.1.0"
