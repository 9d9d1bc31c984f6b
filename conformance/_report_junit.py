"""The JUnit XML report (one testsuite, one testcase per case)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from conformance._results import Status, SuiteResult

__all__ = ["junit_report"]


def junit_report(result: SuiteResult) -> str:
    """Return the report as JUnit XML."""
    suite = ET.Element(
        "testsuite",
        name=f"agentworker-conformance.{result.suite}",
        tests=str(len(result.results)),
        failures=str(result.failed),
        skipped=str(result.skipped),
        errors="1" if result.no_result else "0",
        time=f"{sum(r.duration_s for r in result.results):.3f}",
    )
    props = ET.SubElement(suite, "properties")
    for name, value in (
        ("harness_version", result.harness_version),
        ("spec_version", result.spec_version),
        ("subject", result.subject),
    ):
        ET.SubElement(props, "property", name=name, value=value)
    for r in result.results:
        case = ET.SubElement(
            suite,
            "testcase",
            classname=f"{result.suite}." + r.case_id.rsplit("/", 1)[0].replace("/", "."),
            name=r.case_id,
            time=f"{r.duration_s:.3f}",
        )
        props = ET.SubElement(case, "properties")
        props.extend(
            [ET.Element("property", name="requirement", value=req) for req in r.requirements]
        )
        # One property per requirement verdict: "AWP-RPC-006 fail (step: exactly one response)".
        props.extend(
            [
                ET.Element(
                    "property",
                    name=f"verdict:{o.requirement}",
                    value=o.verdict.value
                    + (f" (step: {o.step})" if o.step is not None else " (decided by case)"),
                )
                for o in r.outcomes
            ]
        )
        if r.counts_as_failure:
            failure = ET.SubElement(
                case,
                "failure",
                message=r.message.splitlines()[0] if r.message else r.status.value,
                type=r.status.value,
            )
            verdicts = [
                f"{o.requirement} {o.verdict.value}"
                + (f" at step {o.step!r}" if o.step is not None else " (decided by case)")
                for o in r.outcomes
            ]
            failure.text = "\n".join([*verdicts, r.message, *r.trace, f"replay: {r.replay}"])
        elif r.status is Status.SKIP:
            ET.SubElement(case, "skipped", message=f"{r.skip_reason}: {r.message}")
        elif r.status is Status.XFAIL:
            ET.SubElement(case, "skipped", message=r.message.splitlines()[0])
    for problem in result.problems:
        case = ET.SubElement(suite, "testcase", classname=result.suite, name="expected-failures")
        ET.SubElement(case, "failure", message=problem, type="PROBLEM")
    if result.no_result:
        case = ET.SubElement(suite, "testcase", classname=result.suite, name="run")
        ET.SubElement(case, "error", message=f"NO RESULT: {result.no_result}")
    ET.indent(suite)
    return ET.tostring(suite, encoding="unicode", xml_declaration=True) + "\n"
