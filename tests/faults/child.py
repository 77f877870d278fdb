"""An adapter process that misbehaves on purpose (tests of SPEC §10 fault handling).

``python child.py MODE``: a plain scan-everything adapter, except that it fails in MODE
at the first post_create of an acknowledged ECP (a layer open in a container), or at
hello / start for the start-up modes. Failing on an input, not on a count, keeps the
failure a function of the events, as a real bug would be.
"""

import json
import os
import signal
import sys
import time

MODE = sys.argv[1] if len(sys.argv) > 1 else "none"


def send(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def trigger(request):
    create = request.get("create") or {}
    ecp = create.get("ecp")
    return request["call"] == "post_create" and ecp is not None and ecp["acknowledged"]


def fail():
    if MODE == "hang":
        time.sleep(3600)
    if MODE == "crash":
        print("contoso: cache corrupted at 0xdeadbeef", file=sys.stderr, flush=True)
        os.kill(os.getpid(), signal.SIGSEGV)
    if MODE == "garbage":
        sys.stdout.write("SKIP it, trust me\n")
        sys.stdout.flush()
        return True
    if MODE == "wrongtype":
        send({"return": 42})
        return True
    if MODE == "exit":
        print("contoso: out of memory", file=sys.stderr, flush=True)
        sys.exit(0)
    if MODE == "raise":
        send({"error": "KeyError: 'volume'", "traceback": "  File contoso.c, line 12"})
        return True
    return False


def answer(request):
    call = request["call"]
    if call == "hello":
        if MODE == "hang-hello":
            time.sleep(3600)
        if MODE == "exit-hello":
            sys.exit(1)
        send({"return": {"protocol": 2 if MODE == "version" else 1,
                         "batch": MODE != "nobatch",
                         "info": {"name": f"faulty child ({MODE})", "version": "1"}}})
        return
    if call == "start" and MODE == "crash-start":
        os.kill(os.getpid(), signal.SIGSEGV)
    if trigger(request) and fail():
        return
    if call == "pre_create":
        send({"return": None if request["create"]["silo"] is None else {"size": 36}})
    elif call == "post_create":
        send({"return": "SCAN"})
    elif call == "signature_updated":
        send({"return": False})
    else:
        send({"return": None})


for line in sys.stdin:
    message = json.loads(line)
    if "batch" in message and MODE == "nobatch":
        sys.exit("contoso: batches are not supported")
    for request in message.get("batch", [message]):
        answer(request)
