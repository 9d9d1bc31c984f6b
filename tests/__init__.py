"""Tests for the agentworker repository."""
