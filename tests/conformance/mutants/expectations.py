"""Where the matrix knows a mutant is not caught, with the reason. An entry whose mutant is
caught after all fails the matrix test, so these lists can only shrink."""

from __future__ import annotations

__all__ = ["KNOWN_ESCAPES", "LEGACY_NOT_CAUGHT", "NO_MUTANT_YET"]

# Mutants (side:name) the suite does not catch yet.
KNOWN_ESCAPES: dict[str, str] = {}

# Host mutants whose cases apply in legacy mode but check the broken behaviour on v1 runs
# only (a legacy host has no notices and no v1 error codes).
_NO_CODES = "legacy runs do not check v1 error codes (AutoGen's callers read only `error`)"
LEGACY_NOT_CAUGHT: dict[str, str] = {
    "legacy-path-only": "a legacy run uses only the legacy path, which this mutant serves",
    "no-type-url-rewrite": "in a legacy run every peer speaks the legacy type URLs",
    "out-of-set-error-code": _NO_CODES,
    "unavailable-when-full": _NO_CODES,
    "unknown-target-unavailable": _NO_CODES,
    "close-after-notice": "legacy workers get no notices, so nothing closes their channels",
}


# Cited MUSTs that have no mutant yet, per suite, with the reason: a MUST a new case cites
# gets its entry here until its mutant is written. An entry that gets a mutant fails the
# matrix test until it is removed, so this list can only shrink.

NO_MUTANT_YET: dict[str, dict[str, str]] = {
    "host": {},
    "worker": {},
}
