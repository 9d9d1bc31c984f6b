"""Reference worker for the agentworker protocol."""
