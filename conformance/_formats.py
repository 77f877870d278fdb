"""The public file formats' names and versions (SPEC §7, §8), for every layer to share."""

TRACE_FORMAT = "wcifs-conformance-trace"
#: 2: operations for concurrency and long histories (``concurrent_opens``,
#: ``signature_updates``, ``start_containers``, ``open_many``, ``malware_every``), and
#: ``nondeterministic``. 3: ``calls``, the adapter's dialogue, and ``failing_call``.
#: Traces of versions 1 and 2 replay unchanged.
TRACE_FORMAT_VERSION = 3
