"""Hardening suite: limits, deadlines and hostile input over raw sockets (issue 6)."""
