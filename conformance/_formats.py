"""The public file formats' names and versions (SPEC §7, §8), for every layer to share."""

TRACE_FORMAT = "wcifs-conformance-trace"
#: 2: operations for concurrency and long histories (``concurrent_opens``,
#: ``signature_updates``, ``start_containers``, ``open_many``, ``malware_every``), and
#: ``nondeterministic``. Version 1 traces replay unchanged.
TRACE_FORMAT_VERSION = 2
