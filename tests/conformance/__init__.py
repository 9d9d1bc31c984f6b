"""Tests of the conformance harness and its host suite."""
