"""End-to-end test of the referrals service and the partner feed, as a partner bank uses them.

A Python client plays a bank: an admin registers it as a partner, a caseworker registers an
entrepreneur in the registry, records their consent to share with the bank and refers them;
the bank logs in to NATS with its own credentials, consumes its durable JetStream feed
(CloudEvents headers, protobuf payloads without personal data), answers over gRPC with its
partner token, disconnects, comes back and resumes exactly where it stopped. The same feed over
gRPC (SubscribeReferralEvents) matches it. A second partner sees nothing of the bank's, over
either route; a referral without consent is refused.

Run by scripts/e2e.sh, which generates the Python stubs from proto/ (PYTHONPATH), starts
nats-server (with per-partner NATS users refreshed by a watcher), Postgres, the registry and
referrals services and their projection workers, and sets:

  E2E_REGISTRY_ADDR   the registry's gRPC address (default: E2E_GRPC_ADDR, then 127.0.0.1:50051)
  E2E_REFERRALS_ADDR  the referrals service's gRPC address (default 127.0.0.1:50054)
  E2E_NATS_URL        nats-server's URL without credentials (default nats://127.0.0.1:4222);
                      each partner logs in with what `acasa partner-credentials` prints
  E2E_ACASA_BIN       the acasa binary, for `acasa token` and `acasa partner-credentials`;
                      the ACASA_* variables are inherited from the script

Plain unittest; each test registers its own partners and people, so tests are independent of
each other and of data already there. Every gRPC call has a deadline and every wait is a poll
with a deadline. Ends with "e2e: N passed, M failed" and exits non-zero on any failure.
Option: -k PATTERN (repeatable, like unittest's).
"""

import asyncio
import json
import os
import queue
import subprocess
import threading
import time
import unittest

import grpc
import nats
import nats.errors
import nats.js.errors
from google.protobuf import duration_pb2, timestamp_pb2
from nats.js import api as js_api

from acasa.partner.v1 import feed_pb2
from acasa.partner.v1 import types_pb2 as ptypes
from acasa.referrals.v1 import referrals_pb2 as rpb
from acasa.referrals.v1 import referrals_pb2_grpc as rpb_grpc
from acasa.registry.v1 import registry_pb2 as regpb
from acasa.registry.v1 import registry_pb2_grpc as regpb_grpc
from acasa.type.v1 import date_pb2, money_pb2

import e2e_common
from e2e_common import ACASA_BIN, RUN, main, mint_token, poll, random_digits, request_id, uuid7, with_check_digit

CREDENTIALS_WAIT = 45.0  # until a new partner's NATS user works (the watcher refreshes every 2 s)
FEED_WAIT = 20.0  # until an expected feed event arrives
QUIET = 2.0  # how long "nothing more arrives" is watched for
PERMISSION_WAIT = 10.0  # until the server's permissions-violation error reaches the client

REGISTRY_ADDR = os.environ.get("E2E_REGISTRY_ADDR") or os.environ.get("E2E_GRPC_ADDR", "127.0.0.1:50051")
REFERRALS_ADDR = os.environ.get("E2E_REFERRALS_ADDR", "127.0.0.1:50054")
NATS_URL = os.environ.get("E2E_NATS_URL", "nats://127.0.0.1:4222")

FEED_STREAM = "ACASA_PARTNER_FEED"
CE_TYPE_PREFIX = "acasa.partner.v1.referral."

def valid_idno():
    """A valid IDNO: 13 digits (company codes start with 10), the last the 7-3-1 check digit."""
    return with_check_digit("10" + random_digits(10))


def valid_idnp():
    return with_check_digit("2" + random_digits(11))


def random_phone():
    return "+3736" + random_digits(7)


def mdl(amount_minor):
    return money_pb2.Money(amount_minor=amount_minor, currency="MDL")


def ce_type(kind):
    return CE_TYPE_PREFIX + kind


class Client(e2e_common.Client):
    """A gRPC stub with one token, a deadline on every unary call, and the feed's stream."""

    def subscribe(self, from_position, count, deadline_s=FEED_WAIT, quiet_s=QUIET):
        """SubscribeReferralEvents from `from_position`: the first `count` events (waiting up to
        `deadline_s` for them), then whatever else arrives within `quiet_s` (should be nothing:
        the stream stays open for live events). Returns (events, extra)."""
        call = self._stub.SubscribeReferralEvents(
            rpb.SubscribeReferralEventsRequest(from_position=from_position),
            timeout=deadline_s + quiet_s + 10, metadata=self.metadata)
        items = queue.Queue()

        def pump():
            try:
                for resp in call:
                    items.put(resp)
            except grpc.RpcError as err:
                items.put(err)

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        got, extra = [], []

        def take(into, until, limit=None):
            while limit is None or len(into) < limit:
                left = until - time.monotonic()
                if left <= 0:
                    return
                try:
                    item = items.get(timeout=left)
                except queue.Empty:
                    return
                if isinstance(item, grpc.RpcError):
                    raise AssertionError(f"SubscribeReferralEvents(from_position={from_position}) "
                                         f"failed: {item.code().name}: {item.details()}")
                into.append(item)

        try:
            take(got, time.monotonic() + deadline_s, count)
            take(extra, time.monotonic() + quiet_s)
        finally:
            call.cancel()
            reader.join(5)
        return got, extra


class FeedEvent:
    """One partner-feed message from NATS, decoded."""

    def __init__(self, msg):
        self.msg = msg
        self.subject = msg.subject
        self.headers = {k.lower(): v for k, v in (msg.headers or {}).items()}
        self.data = bytes(msg.data)
        self.event = feed_pb2.ReferralEvent.FromString(self.data)
        meta = msg.metadata
        self.position = meta.sequence.stream
        self.num_delivered = meta.num_delivered
        self.num_pending = meta.num_pending
        self.id = self.headers.get("ce-id", "")
        self.type = self.headers.get("ce-type", "")
        self.kind = self.event.WhichOneof("kind")

    def key(self):
        return (self.position, self.id, self.type)

    def __repr__(self):
        return f"<{self.position} {self.type} {self.event.referral_id} {self.id}>"


class PartnerNats:
    """A partner's NATS connection (nats-py), driven synchronously on the test's event loop."""

    def __init__(self, loop, creds):
        self.loop = loop
        self.creds = creds
        self.nc = None
        self.js = None
        self.sub = None
        self.errors = []

    def run(self, coro):
        return self.loop.run_until_complete(coro)

    def connect(self):
        async def on_error(err):
            self.errors.append(str(err))

        self.errors = []
        self.nc = self.run(nats.connect(
            servers=[NATS_URL], user=self.creds["user"], password=self.creds["password"],
            inbox_prefix=self.creds["inbox_prefix"], name=f"e2e-partner-{RUN}",
            allow_reconnect=False, connect_timeout=3, error_cb=on_error))
        self.js = self.nc.jetstream(timeout=5)
        return self

    def connect_when_ready(self, deadline_s=CREDENTIALS_WAIT):
        """Connects as soon as the NATS user exists (the watcher adds it within seconds)."""
        def attempt():
            try:
                return self.connect()
            except Exception:
                self.nc = None
                raise
        return poll(f"NATS to accept partner user {self.creds['user']}", attempt, deadline_s, 0.5)

    def open_feed(self):
        """Binds to the partner's durable pull consumer, which Acasa creates when it registers the
        partner (partners may not create consumers); waits until it exists."""
        stream, consumer = self.creds["stream"], self.creds["consumer"]

        def exists():
            info = self.run(self.js.consumer_info(stream, consumer, timeout=2))
            if info.config.filter_subject != self.creds["subject"]:
                raise AssertionError(f"consumer {consumer} filters {info.config.filter_subject}")
            return info
        poll(f"the feed consumer {consumer}", exists, CREDENTIALS_WAIT, 0.3)
        self.sub = self.run(self.js.pull_subscribe_bind(consumer=consumer, stream=stream))
        return self

    def next_events(self, count, deadline_s=FEED_WAIT, ack=True):
        """The next `count` feed messages, each acknowledged (and the ack confirmed)."""
        async def take():
            got = []
            deadline = time.monotonic() + deadline_s
            while len(got) < count:
                left = deadline - time.monotonic()
                if left <= 0.05:
                    break
                try:
                    msgs = await self.sub.fetch(batch=1, timeout=min(left, 2.0))
                except nats.errors.TimeoutError:
                    continue
                for msg in msgs:
                    got.append(FeedEvent(msg))
                    if ack:
                        await msg.ack_sync(timeout=5)
            return got

        got = self.run(take())
        if len(got) < count:
            raise AssertionError(f"the feed delivered {len(got)} of {count} events within "
                                 f"{deadline_s:.0f}s: {got}")
        return got

    def expect_quiet(self, quiet_s=QUIET):
        """Nothing more is delivered within quiet_s; returns what was (should be [])."""
        async def take():
            extra = []
            deadline = time.monotonic() + quiet_s
            while True:
                left = deadline - time.monotonic()
                if left <= 0.05:
                    return extra
                try:
                    msgs = await self.sub.fetch(batch=1, timeout=left)
                except nats.errors.TimeoutError:
                    continue
                extra.extend(FeedEvent(m) for m in msgs)
        return self.run(take())

    def consumer_info(self):
        return self.run(self.sub.consumer_info())

    def wait_error(self, *needles, deadline_s=PERMISSION_WAIT):
        """Waits for an asynchronous server error containing every needle (case-insensitive)."""
        lowered = [n.lower() for n in needles]

        async def wait():
            deadline = time.monotonic() + deadline_s
            while time.monotonic() < deadline:
                for err in self.errors:
                    if all(n in err.lower() for n in lowered):
                        return err
                await asyncio.sleep(0.05)
            return None

        found = self.run(wait())
        if found is None:
            raise AssertionError(f"no server error containing {needles} within {deadline_s:.0f}s; "
                                 f"errors seen: {self.errors}")
        return found

    def close(self):
        if self.nc is not None and not self.nc.is_closed:
            self.run(self.nc.close())
        self.nc = self.js = self.sub = None


class ReferralsE2E(unittest.TestCase):
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        cls.loop = asyncio.new_event_loop()
        cls.registry_channel = grpc.insecure_channel(REGISTRY_ADDR)
        cls.referrals_channel = grpc.insecure_channel(REFERRALS_ADDR)
        grpc.channel_ready_future(cls.registry_channel).result(timeout=30)
        grpc.channel_ready_future(cls.referrals_channel).result(timeout=30)
        cls.registry_stub = regpb_grpc.RegistryServiceStub(cls.registry_channel)
        cls.referrals_stub = rpb_grpc.ReferralServiceStub(cls.referrals_channel)
        cls.reg_caseworker = Client(cls.registry_stub, mint_token("caseworker", "e2e-caseworker"))
        cls.caseworker = Client(cls.referrals_stub, mint_token("caseworker", "e2e-caseworker"))
        cls.admin = Client(cls.referrals_stub, mint_token("admin", "e2e-admin"))
        cls._story = None
        cls._story_error = None

    @classmethod
    def tearDownClass(cls):
        cls.registry_channel.close()
        cls.referrals_channel.close()
        # Whatever a failed NATS connect attempt left running on the loop.
        async def cancel_leftovers():
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        cls.loop.run_until_complete(cancel_leftovers())
        cls.loop.close()

    def setUp(self):
        self._nats = []

    def tearDown(self):
        for conn in self._nats:
            try:
                conn.close()
            except Exception:  # noqa: BLE001 — best effort; the test's result stands
                pass

    # ------------------------------------------------------------------ helpers

    def assert_code(self, code, fn, *args):
        with self.assertRaises(grpc.RpcError) as ctx:
            fn(*args)
        err = ctx.exception
        self.assertEqual(err.code(), code, f"expected {code.name}, got {err.code().name}: {err.details()}")
        return err

    def new_partner(self, label, kind=ptypes.PARTNER_KIND_BANK):
        """Registers a partner (admin) offering loans with a 48-hour response time; returns a
        dict with its id, position, registration request and a Client with its partner token."""
        req = rpb.RegisterPartnerRequest(
            request_id=request_id("partner"),
            kind=kind,
            name=f"E2E {RUN} {label}",
            idno=valid_idno(),
            districts=["Ungheni", "Chisinau"],
            contact=rpb.PartnerContact(email=f"loans.{RUN}.{label.lower()}@example.md",
                                       phone="+37322123456", address="Str. Stefan cel Mare 1"),
            services=[rpb.PartnerService(kind=ptypes.SERVICE_KIND_LOAN,
                                         description="Start-up loans for returning migrants",
                                         min_amount=mdl(1_000_000), max_amount=mdl(50_000_000))],
            response_time=duration_pb2.Duration(seconds=48 * 3600),
        )
        resp = self.admin.RegisterPartner(req)
        self.assertTrue(resp.partner_id)
        self.assertGreater(resp.position, 0)
        got = self.admin.GetPartner(rpb.GetPartnerRequest(partner_id=resp.partner_id,
                                                          min_position=resp.position)).partner
        self.assertEqual((got.partner_id, got.kind, got.name, got.idno),
                         (resp.partner_id, kind, req.name, req.idno))
        self.assertEqual(list(got.services), list(req.services))
        self.assertEqual(got.response_time, req.response_time)
        self.assertFalse(got.suspended)
        token = mint_token("partner", f"e2e-partner-{label.lower()}", partner=resp.partner_id)
        return {"id": resp.partner_id, "position": resp.position, "request": req,
                "client": Client(self.referrals_stub, token)}

    def credentials(self, partner_id):
        """What `acasa partner-credentials` prints for the partner (polled: it may need the
        partner to have reached the read model)."""
        def fetch():
            out = subprocess.run([ACASA_BIN, "partner-credentials", partner_id],
                                 capture_output=True, text=True, timeout=30)
            if out.returncode != 0:
                raise RuntimeError(f"acasa partner-credentials exited {out.returncode}: "
                                   f"{out.stderr.strip()[-500:]}")
            return json.loads(out.stdout)

        creds = poll(f"acasa partner-credentials {partner_id}", fetch, CREDENTIALS_WAIT, 0.5)
        self.assertEqual(creds.get("stream"), FEED_STREAM, creds)
        self.assertEqual(creds.get("subject"), f"acasa.partner.{partner_id}.>", creds)
        self.assertEqual(creds.get("consumer"), partner_id, creds)
        for key in ("user", "password", "inbox_prefix"):
            self.assertTrue(creds.get(key), f"no {key} in {creds}")
        return creds

    def partner_nats(self, partner_id):
        """The partner logged in to NATS with its own user, once that user works."""
        conn = PartnerNats(self.loop, self.credentials(partner_id))
        self._nats.append(conn)
        return conn.connect_when_ready()

    def new_person(self, label, consent_to=(), withdraw_from=()):
        """Registers an entrepreneur; gives partner-sharing consent to each partner of
        consent_to, then withdraws it for each of withdraw_from. Returns a dict with the id,
        the last registry position and the personal data to look for in feeds."""
        given, family = "Ana", f"Zr{RUN.capitalize()}{label}"
        phone = random_phone()
        email = f"{RUN}.{label.lower()}@example.org"
        reg = self.reg_caseworker.RegisterPerson(regpb.RegisterPersonRequest(
            request_id=request_id("person"),
            details=regpb.PersonDetails(
                given_name=given, family_name=family,
                birth_date=date_pb2.Date(year=1992, month=3, day=8), sex=regpb.SEX_FEMALE,
                idnp=valid_idnp(), home_district="Ungheni", home_locality="Sculeni",
                languages=["ro", "en"], profession="Baker", skills=["baking"]),
            contacts=regpb.Contacts(email=email, phone=phone),
            country_of_residence="MD",
            categories=[regpb.CATEGORY_RETURNEE, regpb.CATEGORY_WOMAN_ENTREPRENEUR],
            interests=[regpb.INTEREST_ENTREPRENEURSHIP_SUPPORT],
        ))
        position = reg.position
        purpose = regpb.CONSENT_PURPOSE_PARTNER_SHARING
        for partner_id in consent_to:
            position = max(position, self.reg_caseworker.GiveConsent(regpb.GiveConsentRequest(
                request_id=request_id("consent"), person_id=reg.person_id, purpose=purpose,
                partner_id=partner_id, channel=regpb.CONSENT_CHANNEL_IN_PERSON)).position)
        for partner_id in withdraw_from:
            position = max(position, self.reg_caseworker.WithdrawConsent(regpb.WithdrawConsentRequest(
                request_id=request_id("withdraw"), person_id=reg.person_id, purpose=purpose,
                partner_id=partner_id, channel=regpb.CONSENT_CHANNEL_EMAIL)).position)
        profile = rpb.SharedProfile(
            display_name=f"{given} {family}", phone=phone, email=email,
            note=f"Bakery in Sculeni {RUN}{label}: an oven and working capital")
        return {"id": reg.person_id, "position": position, "profile": profile,
                "personal": [given + " " + family, family, phone, email, profile.note]}

    def refer(self, person, partner_id, amount=5_000_000, client=None, req_id=None):
        req = rpb.CreateReferralRequest(
            request_id=req_id or request_id("refer"), person_id=person["id"], partner_id=partner_id,
            need=ptypes.Need(service=ptypes.SERVICE_KIND_LOAN, requested_amount=mdl(amount)),
            district="Ungheni", profile=person["profile"],
            min_registry_position=person["position"])
        resp = (client or self.caseworker).CreateReferral(req)
        self.assertTrue(resp.referral_id)
        self.assertGreater(resp.position, 0)
        self.assertTrue(resp.HasField("due_at"))
        return req, resp

    def check_feed_event(self, ev, partner_id, referral_id, kind, person):
        """A feed message is a CloudEvent for the partner's referral, of the expected kind, and
        carries no personal data."""
        where = repr(ev)
        self.assertEqual(ev.subject, f"acasa.partner.{partner_id}.referral.{referral_id}", where)
        h = ev.headers
        self.assertEqual(h.get("ce-specversion"), "1.0", f"{where}: {h}")
        self.assertTrue(h.get("ce-id"), f"{where}: no ce-id in {h}")
        self.assertEqual(h.get("ce-type"), ce_type(kind), f"{where}: {h}")
        self.assertEqual(h.get("ce-source"), "/acasa/referrals", f"{where}: {h}")
        self.assertEqual(h.get("ce-subject"), referral_id, f"{where}: {h}")
        self.assertEqual(h.get("content-type"), "application/protobuf", f"{where}: {h}")
        ce_time = h.get("ce-time", "")
        self.assertRegex(ce_time, r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|\+00:00)$",
                         f"{where}: ce-time is not RFC 3339 UTC")
        stamp = timestamp_pb2.Timestamp()
        stamp.FromJsonString(ce_time)
        self.assertLess(abs(stamp.ToSeconds() - time.time()), 600, f"{where}: ce-time {ce_time}")
        self.assertEqual(ev.event.referral_id, referral_id, where)
        self.assertEqual(ev.event.partner_id, partner_id, where)
        self.assertEqual(ev.kind, kind, where)
        self.assertTrue(ev.event.HasField("occurred_at"), where)
        self.assertEqual(ev.num_delivered, 1, f"{where}: delivered {ev.num_delivered} times")
        # No personal data: not in the payload, the headers or the subject.
        raw = ev.data + ev.subject.encode() + "".join(f"{k}:{v}\n" for k, v in h.items()).encode()
        for secret in person["personal"] + [person["id"]]:
            self.assertNotIn(secret.encode(), raw, f"{where}: the feed carries {secret!r}")
        return ev

    # ------------------------------------------------------------------ the bank's story

    def bank_story(self):
        """The bank's life over NATS, run once and shared by the tests that check it."""
        cls = type(self)
        if cls._story is not None:
            return cls._story
        if cls._story_error is not None:
            self.fail(f"the bank's NATS story failed earlier: {cls._story_error}")
        try:
            cls._story = self._run_bank_story()
        except BaseException as err:
            cls._story_error = f"{type(err).__name__}: {err}"
            raise
        return cls._story

    def _run_bank_story(self):
        bank = self.new_partner("Bank")
        bank_id, bank_client = bank["id"], bank["client"]
        person = self.new_person("Story", consent_to=[bank_id])

        # The bank logs in with its own NATS user and opens its durable feed consumer.
        feed = self.partner_nats(bank_id).open_feed()
        self.assertEqual(feed.expect_quiet(0.5), [], "a new partner's feed starts empty")

        # A caseworker refers the entrepreneur; a retry is answered alike and sends nothing more.
        req1, ref1 = self.refer(person, bank_id)
        again = self.caseworker.CreateReferral(req1)
        self.assertEqual((again.referral_id, again.position), (ref1.referral_id, ref1.position))
        rid1 = ref1.referral_id

        before = []
        (received,) = feed.next_events(1)
        self.check_feed_event(received, bank_id, rid1, "received", person)
        r = received.event.received
        self.assertEqual(r.need, req1.need)
        self.assertEqual(r.district, "Ungheni")
        self.assertEqual(r.due_at, ref1.due_at)
        self.assertEqual(r.referred_by_partner_id, "")
        before.append(received)

        # The bank reads the shared profile with its partner token.
        got = bank_client.GetReferral(rpb.GetReferralRequest(referral_id=rid1,
                                                             min_position=ref1.position)).referral
        self.assertEqual(got.referral_id, rid1)
        self.assertEqual(got.partner_id, bank_id)
        self.assertEqual(got.partner_kind, ptypes.PARTNER_KIND_BANK)
        self.assertEqual(got.status, rpb.REFERRAL_STATUS_SENT)
        self.assertEqual(got.need, req1.need)
        self.assertEqual(got.district, "Ungheni")
        self.assertEqual(got.profile, person["profile"])
        self.assertEqual(got.person_id, "", "a partner token does not see the registry's person id")
        self.assertEqual(got.due_at, ref1.due_at)

        # Accepts, reports progress twice, records the loan it disbursed.
        acc = bank_client.AcceptReferral(rpb.AcceptReferralRequest(request_id=request_id("accept"),
                                                                   referral_id=rid1))
        (ev,) = feed.next_events(1)
        before.append(self.check_feed_event(ev, bank_id, rid1, "accepted", person))
        for stage in (ptypes.PROGRESS_STAGE_CONTACTED, ptypes.PROGRESS_STAGE_UNDER_ASSESSMENT):
            bank_client.ReportProgress(rpb.ReportProgressRequest(
                request_id=request_id("progress"), referral_id=rid1, stage=stage))
            (ev,) = feed.next_events(1)
            self.check_feed_event(ev, bank_id, rid1, "progress", person)
            self.assertEqual(ev.event.progress.stage, stage)
            before.append(ev)
        outcome = ptypes.Outcome(loan_disbursed=mdl(4_500_000))
        out = bank_client.RecordOutcome(rpb.RecordOutcomeRequest(
            request_id=request_id("outcome"), referral_id=rid1, outcome=outcome))
        self.assertGreater(out.position, acc.position)
        (ev,) = feed.next_events(1)
        self.check_feed_event(ev, bank_id, rid1, "outcome", person)
        self.assertEqual(ev.event.outcome.outcome, outcome)
        self.assertEqual(ev.event.outcome.outcome.loan_disbursed.currency, "MDL")
        before.append(ev)
        got = bank_client.GetReferral(rpb.GetReferralRequest(referral_id=rid1,
                                                             min_position=out.position)).referral
        self.assertEqual(got.status, rpb.REFERRAL_STATUS_OUTCOME_RECORDED)
        self.assertEqual(got.outcome, outcome)
        self.assertEqual(got.progress, ptypes.PROGRESS_STAGE_UNDER_ASSESSMENT)

        # Everything delivered is acknowledged; then the bank goes away.
        self.assertEqual(feed.expect_quiet(0.5), [])
        info = feed.consumer_info()
        self.assertEqual((info.num_pending, info.num_ack_pending), (0, 0), f"consumer: {info}")
        feed.close()

        # While it is away: the caseworker closes the referral and sends a second one.
        closed = self.caseworker.CloseReferral(rpb.CloseReferralRequest(
            request_id=request_id("close"), referral_id=rid1))
        self.assertGreater(closed.position, out.position)
        req2, ref2 = self.refer(person, bank_id, amount=2_000_000)
        rid2 = ref2.referral_id
        self.assertNotEqual(rid2, rid1)
        # Both are in the log before the bank comes back (the read model has them).
        got = self.caseworker.GetReferral(rpb.GetReferralRequest(referral_id=rid1,
                                                                 min_position=closed.position)).referral
        self.assertEqual(got.status, rpb.REFERRAL_STATUS_CLOSED)
        self.caseworker.GetReferral(rpb.GetReferralRequest(referral_id=rid2, min_position=ref2.position))

        # The bank comes back and resumes its durable consumer: exactly what it missed, in order.
        feed = self.partner_nats(bank_id).open_feed()
        after = feed.next_events(2)
        self.check_feed_event(after[0], bank_id, rid1, "closed", person)
        self.check_feed_event(after[1], bank_id, rid2, "received", person)
        self.assertEqual(after[1].event.received.need, req2.need)
        self.assertEqual(after[1].event.received.due_at, ref2.due_at)
        self.assertEqual(feed.expect_quiet(), [], "nothing beyond what the bank had missed")
        self.assertEqual(after[-1].num_pending, 0)

        events = before + after
        ids = [e.id for e in events]
        positions = [e.position for e in events]
        self.assertEqual(len(set(ids)), len(ids), f"ce-ids repeat: {events}")
        self.assertEqual(positions, sorted(set(positions)), f"positions not increasing: {events}")
        self.assertGreater(after[0].position, before[-1].position)
        self.assertEqual([e.type for e in events],
                         [ce_type(k) for k in ("received", "accepted", "progress", "progress",
                                               "outcome", "closed", "received")])
        info = feed.consumer_info()
        self.assertEqual((info.num_pending, info.num_ack_pending), (0, 0), f"consumer: {info}")
        feed.close()
        return {"bank": bank, "person": person, "events": events, "referrals": (rid1, rid2)}

    def test_10_bank_consumes_its_feed_over_nats_and_resumes_after_disconnect(self):
        story = self.bank_story()
        self.assertEqual(len(story["events"]), 7)

    def test_11_grpc_feed_matches_nats_feed_and_resumes_from_a_position(self):
        story = self.bank_story()
        bank_client, nats_events = story["bank"]["client"], story["events"]
        want = [e.key() for e in nats_events]

        got, extra = bank_client.subscribe(0, len(want))
        self.assertEqual([(r.position, r.id, r.type) for r in got], want)
        self.assertEqual(extra, [], "nothing beyond the bank's events")
        for resp, ev in zip(got, nats_events):
            self.assertEqual(resp.event, ev.event, f"position {resp.position}")
            stamp = timestamp_pb2.Timestamp()
            stamp.FromJsonString(ev.headers["ce-time"])
            self.assertEqual(resp.time, stamp, f"position {resp.position}: time vs ce-time")

        # Resuming after a position in the middle gives exactly the rest.
        middle = 3
        got, extra = bank_client.subscribe(want[middle - 1][0], len(want) - middle)
        self.assertEqual([(r.position, r.id, r.type) for r in got], want[middle:])
        self.assertEqual(extra, [])
        # After the last one: nothing (until something new happens).
        got, extra = bank_client.subscribe(want[-1][0], 0, quiet_s=QUIET)
        self.assertEqual(got + extra, [])

    # ------------------------------------------------------------------ isolation

    def test_20_another_partner_sees_nothing_of_the_banks(self):
        bank = self.new_partner("IsoBank")
        other = self.new_partner("IsoMfi", kind=ptypes.PARTNER_KIND_MICROFINANCE_INSTITUTION)
        bank_id, other_id = bank["id"], other["id"]
        person = self.new_person("Iso", consent_to=[bank_id, other_id])

        bank_feed = self.partner_nats(bank_id).open_feed()
        intruder = self.partner_nats(other_id)

        _, ref_bank = self.refer(person, bank_id)
        _, ref_other = self.refer(person, other_id)
        rid_bank, rid_other = ref_bank.referral_id, ref_other.referral_id
        (ev,) = bank_feed.next_events(1)
        self.check_feed_event(ev, bank_id, rid_bank, "received", person)
        last = max(ref_bank.position, ref_other.position)

        # gRPC: the other partner cannot read or answer the bank's referral ...
        oc = other["client"]
        self.assert_code(grpc.StatusCode.NOT_FOUND, oc.GetReferral,
                         rpb.GetReferralRequest(referral_id=rid_bank, min_position=last))
        self.assert_code(grpc.StatusCode.NOT_FOUND, oc.AcceptReferral,
                         rpb.AcceptReferralRequest(request_id=request_id("steal"), referral_id=rid_bank))
        # ... its inbox holds only its own ...
        inbox = oc.ListInbox(rpb.ListInboxRequest(min_position=last, page_size=200))
        self.assertEqual([r.referral_id for r in inbox.referrals], [rid_other])
        for r in inbox.referrals:
            self.assertEqual(r.partner_id, other_id)
        try:
            named = oc.ListInbox(rpb.ListInboxRequest(partner_id=bank_id, min_position=last))
            self.assertNotIn(rid_bank, [r.referral_id for r in named.referrals],
                             "another partner's inbox by naming it")
        except grpc.RpcError as err:
            self.assertIn(err.code(), (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.INVALID_ARGUMENT,
                                       grpc.StatusCode.NOT_FOUND), err.details())
        # ... and its gRPC feed carries only its own referral.
        got, extra = oc.subscribe(0, 1)
        self.assertEqual([(r.event.referral_id, r.event.partner_id, r.type) for r in got + extra],
                         [(rid_other, other_id, ce_type("received"))])
        # The other way round too.
        self.assert_code(grpc.StatusCode.NOT_FOUND, bank["client"].GetReferral,
                         rpb.GetReferralRequest(referral_id=rid_other, min_position=last))

        # NATS: the other partner's user may not listen on the bank's subjects ...
        bank_subject = f"acasa.partner.{bank_id}.>"
        spy = intruder.run(intruder.nc.subscribe(bank_subject))
        intruder.run(intruder.nc.flush(timeout=5))
        intruder.wait_error("permissions violation for subscription", bank_subject)
        # ... nor create a consumer on the bank's feed, under the bank's name or its own ...
        for name in (bank_id, other_id):
            with self.assertRaises((nats.errors.TimeoutError, nats.js.errors.Error),
                                   msg=f"consumer {name} on {bank_subject} was created"):
                intruder.run(intruder.js.add_consumer(
                    FEED_STREAM, config=js_api.ConsumerConfig(
                        name=name, durable_name=name, filter_subject=bank_subject,
                        ack_policy=js_api.AckPolicy.EXPLICIT), timeout=2))
            intruder.wait_error("permissions violation for publish",
                                f"$JS.API.CONSUMER.CREATE.{FEED_STREAM}.{name}.acasa.partner.{bank_id}.")
        # ... nor pull from the bank's consumer.
        stolen = intruder.run(intruder.js.pull_subscribe_bind(consumer=bank_id, stream=FEED_STREAM))
        with self.assertRaises(nats.errors.TimeoutError):
            intruder.run(stolen.fetch(batch=1, timeout=1.5))
        intruder.wait_error("permissions violation for publish",
                            f"$JS.API.CONSUMER.MSG.NEXT.{FEED_STREAM}.{bank_id}")

        # The bank's next event reaches the bank, and nothing of it the other partner.
        bank["client"].AcceptReferral(rpb.AcceptReferralRequest(request_id=request_id("accept"),
                                                                referral_id=rid_bank))
        (ev,) = bank_feed.next_events(1)
        self.check_feed_event(ev, bank_id, rid_bank, "accepted", person)
        with self.assertRaises(nats.errors.TimeoutError):
            intruder.run(spy.next_msg(timeout=0.5))
        # Its own feed over NATS: exactly its own referral.
        intruder.open_feed()
        (own,) = intruder.next_events(1)
        self.check_feed_event(own, other_id, rid_other, "received", person)
        self.assertEqual(intruder.expect_quiet(), [])

    # ------------------------------------------------------------------ consent

    def test_30_referral_without_consent_is_failed_precondition(self):
        bank = self.new_partner("ConsentBank")
        other = self.new_partner("ConsentMfi", kind=ptypes.PARTNER_KIND_MICROFINANCE_INSTITUTION)
        bank_id = bank["id"]
        # Consent to share with another partner only.
        elsewhere = self.new_person("Elsewhere", consent_to=[other["id"]])
        err = self.assert_code(grpc.StatusCode.FAILED_PRECONDITION, lambda: self.refer(elsewhere, bank_id))
        self.assertNotIn(elsewhere["profile"].phone, err.details())
        # Consent given, then withdrawn.
        withdrawn = self.new_person("Withdrawn", consent_to=[bank_id], withdraw_from=[bank_id])
        self.assert_code(grpc.StatusCode.FAILED_PRECONDITION, lambda: self.refer(withdrawn, bank_id))
        # No consent at all.
        nobody = self.new_person("Noconsent")
        self.assert_code(grpc.StatusCode.FAILED_PRECONDITION, lambda: self.refer(nobody, bank_id))
        # With consent it goes through; the bank's feed holds that referral and nothing else.
        consented = self.new_person("Consented", consent_to=[bank_id])
        _, ref = self.refer(consented, bank_id)
        got, extra = bank["client"].subscribe(0, 1)
        self.assertEqual([(r.event.referral_id, r.type) for r in got + extra],
                         [(ref.referral_id, ce_type("received"))])

    def test_31_unknown_partner_is_not_found(self):
        # Consent is recorded for the unknown id too, so only the partner is missing.
        unknown = uuid7()
        person = self.new_person("Unknown", consent_to=[unknown])
        self.assert_code(grpc.StatusCode.NOT_FOUND, lambda: self.refer(person, unknown))


if __name__ == "__main__":
    main(ReferralsE2E, __doc__)
