"""The job model and lifecycle. Never touches the network on import; storage comes in as a port."""
