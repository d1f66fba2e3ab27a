"""What the end-to-end tests share: ids, tokens, a stub wrapper with deadlines, polling, the
google.rpc details of an error, and the runner that prints the closing "e2e: N passed, M
failed" line.

Imported by tests/e2e/test_*.py (the script's own folder is on sys.path).
"""

import argparse
import os
import random
import string
import subprocess
import sys
import time
import unittest
import uuid

from google.rpc import error_details_pb2
from grpc_status import rpc_status

TIMEOUT = 10.0  # seconds, for every unary call
ACASA_BIN = os.environ.get("E2E_ACASA_BIN", "target/debug/acasa")

# Unique per run, so the tests also work against services that already hold data.
RUN = "".join(random.choice(string.ascii_lowercase) for _ in range(8))
_request_counter = 0


def request_id(label="r"):
    global _request_counter
    _request_counter += 1
    return f"e2e-{RUN}-{label}-{_request_counter}"


def check_digit_731(first12):
    """The check digit of a Moldovan IDNP or IDNO: weights 7, 3, 1 repeating, sum mod 10."""
    weights = (7, 3, 1)
    return sum(int(d) * weights[i % 3] for i, d in enumerate(first12)) % 10


def with_check_digit(first12):
    return first12 + str(check_digit_731(first12))


def random_digits(n):
    return "".join(random.choice(string.digits) for _ in range(n))


def uuid7():
    """A random UUIDv7 (time-ordered), like the services' ids."""
    ms = int(time.time() * 1000) & ((1 << 48) - 1)
    value = (ms << 80) | int.from_bytes(os.urandom(10), "big")
    value = (value & ~(0xF << 76)) | (0x7 << 76)  # version 7
    value = (value & ~(0x3 << 62)) | (0x2 << 62)  # RFC 4122 variant
    return str(uuid.UUID(int=value))


def mint_token(role, subject, partner=None, host=None):
    """A bearer token from `acasa token` (the dev issuer, same secret as the services); a
    partner's token carries its partner id, a host institution's its host id."""
    cmd = [ACASA_BIN, "token", "--role", role, "--subject", subject, "--ttl-seconds", "3600"]
    if partner:
        cmd += ["--partner", partner]
    if host:
        cmd += ["--host", host]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=30)
    token = out.stdout.strip().splitlines()[-1].strip()
    if token.lower().startswith("bearer "):
        token = token[7:]
    return token


def poll(what, fn, deadline_s, interval=0.2):
    """Calls fn() until it returns something truthy; fails with `what` at the deadline."""
    deadline = time.monotonic() + deadline_s
    last = None
    while True:
        try:
            result = fn()
            if result:
                return result
        except Exception as err:  # noqa: BLE001 — kept for the failure message
            last = err
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {deadline_s:.0f}s waiting for {what}"
                                 + (f"; last error: {last!r}" if last else ""))
        time.sleep(interval)


def error_details(err, detail_type):
    """The google.rpc details of type `detail_type` (e.g. error_details_pb2.BadRequest) that a
    failed call carries in grpc-status-details-bin, unpacked."""
    status = rpc_status.from_call(err)
    if status is None:
        return []
    found = []
    for detail in status.details:
        if detail.Is(detail_type.DESCRIPTOR):
            message = detail_type()
            detail.Unpack(message)
            found.append(message)
    return found


def bad_fields(err):
    """The fields an INVALID_ARGUMENT's google.rpc.BadRequest names, in its order."""
    return [v.field for bad in error_details(err, error_details_pb2.BadRequest) for v in bad.field_violations]


def precondition_rules(err):
    """The rules (violation types) a FAILED_PRECONDITION's google.rpc.PreconditionFailure names."""
    return [v.type for failure in error_details(err, error_details_pb2.PreconditionFailure)
            for v in failure.violations]


class Client:
    """A gRPC stub with one token and a deadline on every unary call."""

    def __init__(self, stub, token):
        self._stub = stub
        self.metadata = () if token is None else (("authorization", f"Bearer {token}"),)

    def __getattr__(self, method):
        rpc = getattr(self._stub, method)

        def call(request):
            return rpc(request, timeout=TIMEOUT, metadata=self.metadata)

        return call


class _Result(unittest.TextTestResult):
    """Counts passes too, for the closing line."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.passed = 0

    def addSuccess(self, test):
        super().addSuccess(test)
        self.passed += 1


def main(case, doc):
    """Runs the test case's tests (name order; -k PATTERN repeatable), prints the closing
    line and exits non-zero on any failure, skip, or if nothing ran."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-k", dest="patterns", action="append", default=[],
                        help="only tests whose name contains PATTERN (repeatable)")
    args = parser.parse_args()
    loader = unittest.TestLoader()
    if args.patterns:
        loader.testNamePatterns = [p if "*" in p else f"*{p}*" for p in args.patterns]
    suite = loader.loadTestsFromTestCase(case)
    runner = unittest.TextTestRunner(stream=sys.stdout, verbosity=2, resultclass=_Result)
    result = runner.run(suite)
    failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    # Nothing skips here; a skip would be a test that did not check what it should.
    failed += len(result.skipped)
    print(f"e2e: {result.passed} passed, {failed} failed")
    if failed or result.passed == 0:
        sys.exit(1)
