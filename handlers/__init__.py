"""The HTTP, CLI and background entry points: operation handlers bound by operationId."""
