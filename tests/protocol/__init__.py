"""Tests of the protocol schemas, the generated stubs and the schema tooling."""
