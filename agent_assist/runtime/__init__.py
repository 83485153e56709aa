"""Live calls without sockets: the composition root, the hub, a call's lifecycle."""
