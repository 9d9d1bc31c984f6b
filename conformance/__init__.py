"""Conformance suite for agentworker hosts and workers."""
