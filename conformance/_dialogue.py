"""A trace's dialogue: every call the adapter received, what it was handed and what it
answered, in the JSON form of the process protocol (docs/PROTOCOL.md), and its rendering.

An entry is ``{"step": N, "call": HOOK, <argument>: ..., "return": ...}`` with, when they
happened, ``"services"`` (the adapter's requests during the call), ``"error"`` (the call
failed) and, on the call a violation was found in, ``"probes"``: what the diagnosis
re-asked a fresh adapter fed the same history, and its answers. Step 0 is the start, the
last step number the stop. Light: the reports render it without the engine.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from reference.contract import Flags, RedirectionEcp

Call = dict[str, Any]

_FLAG_NAMES = {f: f.name.removeprefix("SERVICED_FROM_") for f in Flags if f.name}


def up_to_step(calls: Sequence[Call], step: int) -> list[Call]:
    """The calls made up to and including operation ``step`` (1-based)."""
    return [c for c in calls if c.get("step", 0) <= step]


def mark(calls: list[Call], violation: Any) -> int | None:
    """The index of the call ``violation`` was found in (its ``at``: hook and create id,
    else the last call made); that call also gets the violation's probes."""
    if not calls:
        return None
    at = getattr(violation, "at", None)
    index = len(calls) - 1
    if at is not None:
        hook, create_id = at
        for i in range(len(calls) - 1, -1, -1):
            c = calls[i]
            if c["call"] == hook and (c.get("create") or {}).get("create_id") == create_id:
                index = i
                break
    probes = getattr(violation, "probes", None)
    if probes:
        calls[index] = {**calls[index], "probes": list(probes)}
    return index


def _hex(value: Any) -> str:
    return str(value) if value else "?"


def ecp_text(ecp: Any) -> str:
    """An ECP as the adapter was handed it: acknowledgement, flags and ids."""
    if ecp is None:
        return "no ECP"
    try:
        parsed = RedirectionEcp(bytes.fromhex(ecp["raw"]), bool(ecp["acknowledged"]))
    except (KeyError, TypeError, ValueError):
        return f"ECP {ecp!r}"
    if not parsed.acknowledged:
        return "ECP not acknowledged by wcifs"
    flags = " | ".join(name for f, name in _FLAG_NAMES.items() if parsed.flags & f)
    shape = "" if parsed.complete else f", only {len(parsed.raw)} of 36 bytes"
    return (f"ECP acknowledged: flags {flags or 'none'} ({int(parsed.flags):#x}), "
            f"FileId {parsed.file_id.hex()}, VolumeGuid {parsed.volume_guid.hex()}{shape}")


def _silo(silo: Any) -> str:
    return "host" if silo is None else f"silo {silo}"


def argument_text(call: str, entry: Call) -> str:
    """What the hook was handed, in words."""
    if call in ("pre_create", "post_create"):
        c = entry.get("create") or {}
        text = (f"create {c.get('create_id')}: {c.get('path')} on volume "
                f"{_hex(c.get('volume_guid'))}, {_silo(c.get('silo'))}")
        if call == "post_create":
            text += f", FileId {_hex(c.get('file_id'))}; {ecp_text(c.get('ecp'))}"
        return text
    if call == "scan_completed":
        r = entry.get("result") or {}
        create = r.get("create_id")
        origin = "proactive scan" if create is None else f"create {create}"
        return (f"{origin}: FileId {_hex(r.get('file_id'))} on volume "
                f"{_hex(r.get('volume_guid'))}, {r.get('outcome')} under signature "
                f"v{r.get('signature_version')} ({r.get('origin')})")
    if call == "file_changed":
        c = entry.get("change") or {}
        return (f"{c.get('kind')} of {c.get('path')} (FileId {_hex(c.get('file_id'))} on "
                f"volume {_hex(c.get('volume_guid'))}), {_silo(c.get('silo'))}")
    if "version" in entry:
        return f"signature v{entry['version']}"
    return ""


def answer_text(call: str, entry: Call) -> str:
    if "error" in entry:
        return f"failed: {entry['error']}"
    if "return" not in entry:
        return "no answer"
    value = entry["return"]
    if call == "pre_create":
        return "no ECP requested" if value is None else (
            f"EcpRequest(size={value['size']})" if isinstance(value, dict) and "size" in value
            else repr(value))
    if isinstance(value, dict) and "unexpected" in value:
        return f"{value['unexpected']} (not the type the hook returns)"
    if value is None:
        return "ok"
    return str(value)


def service_text(s: Call) -> str:
    """One request the adapter made of the host during a call, and the answer."""
    asked = (f"read_registry({s.get('key')!r})" if s.get("service") == "read_registry"
             else f"{s.get('service')}()")
    return f"{asked} -> {s.get('return')}"


def call_lines(entry: Call, *, failing: bool = False) -> list[str]:
    """One call: ``hook(argument) -> answer``, then its service requests and probes."""
    call = str(entry.get("call"))
    lines = [f"{call}({argument_text(call, entry)}) -> {answer_text(call, entry)}"
             + ("   <-- the violation" if failing else "")]
    lines += [f"    asked the host: {service_text(s)}" for s in entry.get("services") or ()]
    for p in entry.get("probes") or ():
        answer = p.get("return") or "no answer (it failed on that history)"
        lines.append(f"    probe: a fresh adapter, the same history, re-asked with "
                     f"{p.get('probe')}: {answer}")
    return lines


def render(calls: Sequence[Call], steps: Sequence[str], failing: int | None) -> list[str]:
    """The whole dialogue under the steps: each step, then the calls it caused."""
    by_step: dict[int, list[int]] = {}
    for i, entry in enumerate(calls):
        by_step.setdefault(int(entry.get("step", 0)), []).append(i)
    lines: list[str] = []
    last = len(steps) + 1
    for step in range(last + 1):
        made = by_step.pop(step, [])
        if step == 0 or step == last:
            if not made:
                continue
            lines.append("  start" if step == 0 else "  stop")
        else:
            lines.append(f"  {step}. {steps[step - 1]}"
                         + ("" if made else "   (no call to the adapter)"))
        for i in made:
            lines += [f"       {line}" for line in call_lines(calls[i], failing=i == failing)]
    for step, made in sorted(by_step.items()):  # steps the description does not reach
        lines.append(f"  {step}. (not described)")
        for i in made:
            lines += [f"       {line}" for line in call_lines(calls[i], failing=i == failing)]
    return lines
