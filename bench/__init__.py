"""Throughput, latency and CPU comparison of agentworker hosts (see bench/README.md)."""
