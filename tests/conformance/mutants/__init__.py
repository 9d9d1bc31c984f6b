"""The mutation matrix: subjects that each break one MUST of the spec, built test-side as
wrappers around the reference host and reference worker, and the machinery that checks the
suite fails each of them on a case (or step) citing that MUST."""
