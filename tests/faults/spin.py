"""In-process adapters that hang (SPEC §10: the watchdog bounds every call)."""

from conformance import BaseAdapter, EcpRequest, Verdict


class Spins(BaseAdapter):
    """Loops forever on the first layer open in a container whose ECP was acknowledged."""

    def pre_create(self, create):
        return EcpRequest() if create.silo is not None else None

    def post_create(self, create):
        if create.ecp is not None and create.ecp.acknowledged:
            while True:
                pass
        return Verdict.SCAN
