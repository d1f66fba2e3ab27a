"""End-to-end test of the placements service over gRPC: a graduate's six months at a host.

A caseworker registers a host institution and publishes a graduate offer whose start window
reaches back more than six months; a graduate registered in the registry with a profession,
skills, languages and programme-participation consent becomes a candidate once the
placements worker has projected the registry (through the registry's PersonDataService), and
ranks first, with why. Proposed, accepted, signed and started a little over six months ago,
the placement's six months fall due at the deadline worker's next sweep (it runs every
ACASA_PLACEMENTS_SWEEP_MS, 200 ms in scripts/e2e.sh, as of today's UTC date). The host's own
token confirms presence month by month (another host's is NOT_FOUND), finance sees the
payment list and pays each month (not above what is due, not twice; a caseworker may not),
a travel claim is approved within the cap and paid, the placement completes, its outcome is
recorded, and the budget, outcomes and progress views count it. Retried commands (the same
request_id) answer what they answered first. Two short tests more: the host sees the
person's name and contacts only while the placement is signed or running, and bad input is
INVALID_ARGUMENT naming every bad field.

Run by scripts/e2e.sh, which generates the Python stubs from proto/ (PYTHONPATH), starts
nats-server, Postgres and every service with its worker (the placements worker told where
the registry is, ACASA_REGISTRY_URL), and sets:

  E2E_PLACEMENTS_ADDR  the placements service's gRPC address (default 127.0.0.1:50052)
  E2E_REGISTRY_ADDR    the registry's gRPC address (default: E2E_GRPC_ADDR, then 127.0.0.1:50051)
  E2E_ACASA_BIN        the acasa binary, for `acasa token`; the ACASA_* variables are
                       inherited from the script

Plain unittest; each test registers its own host, offer and people (names unique per run),
so tests are independent of each other and of data already there: the views that count
across the programme (budget, outcomes, progress) are compared before and after. Every gRPC
call has a deadline and every wait is a poll with a deadline. Ends with "e2e: N passed, M
failed" and exits non-zero on any failure. Option: -k PATTERN (repeatable, like unittest's).
"""

import calendar
import os
import unittest
from datetime import date, datetime, timedelta, timezone

import grpc

from acasa.placements.v1 import placements_pb2 as pb
from acasa.placements.v1 import placements_pb2_grpc as pb_grpc
from acasa.registry.v1 import registry_pb2 as regpb
from acasa.registry.v1 import registry_pb2_grpc as regpb_grpc
from acasa.type.v1 import date_pb2, money_pb2
from e2e_common import (RUN, Client, bad_fields, main, mint_token, poll, precondition_rules, random_digits,
                        request_id, uuid7, with_check_digit)

PLACEMENTS_ADDR = os.environ.get("E2E_PLACEMENTS_ADDR", "127.0.0.1:50052")
REGISTRY_ADDR = os.environ.get("E2E_REGISTRY_ADDR") or os.environ.get("E2E_GRPC_ADDR", "127.0.0.1:50051")

DUE_WAIT = 30.0  # until the deadline worker has recorded the months that fell due
ALLOWANCE = 600_000  # MDL minor units a month
TRAVEL_CAP = 200_000
TERM = 6
# Started this long ago: six months are at most 184 days, so all six have fallen due.
STARTED_DAYS_AGO = 195
SUBJECT = f"Hydrotechnics {RUN}"  # a profession only this run's graduate has


def today():
    """The deadline worker's today: the UTC date."""
    return datetime.now(timezone.utc).date()


def add_months(d, n):
    """d + n months, the day clamped to the month's last (as the service counts months)."""
    m = d.month - 1 + n
    year, month = d.year + m // 12, m % 12 + 1
    return date(year, month, min(d.day, calendar.monthrange(year, month)[1]))


def pbdate(d):
    return date_pb2.Date(year=d.year, month=d.month, day=d.day)


def pydate(d):
    return date(d.year, d.month, d.day)


def mdl(amount_minor):
    return money_pb2.Money(amount_minor=amount_minor, currency="MDL")


def valid_idno():
    """A valid IDNO: 13 digits (company codes start with 10), the last the 7-3-1 check digit."""
    return with_check_digit("10" + random_digits(10))


class PlacementsE2E(unittest.TestCase):
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        cls.channels = [grpc.insecure_channel(PLACEMENTS_ADDR), grpc.insecure_channel(REGISTRY_ADDR)]
        for channel in cls.channels:
            grpc.channel_ready_future(channel).result(timeout=30)
        stub = pb_grpc.PlacementServiceStub(cls.channels[0])
        registry = regpb_grpc.RegistryServiceStub(cls.channels[1])
        cls.stub = stub
        cls.caseworker = Client(stub, mint_token("caseworker", "e2e-placements-caseworker"))
        cls.finance = Client(stub, mint_token("finance", "e2e-placements-finance"))
        cls.viewer = Client(stub, mint_token("viewer", "e2e-placements-viewer"))
        cls.anonymous = Client(stub, None)
        cls.registry = Client(registry, mint_token("caseworker", "e2e-placements-registrar"))

    @classmethod
    def tearDownClass(cls):
        for channel in cls.channels:
            channel.close()

    def setUp(self):
        self.position = 0  # the highest stream position this test's commands answered

    # ------------------------------------------------------------------ helpers

    def seen(self, position):
        self.position = max(self.position, position)
        return position

    def host_client(self, host_id, label):
        return Client(self.stub, mint_token("host", f"e2e-host-{label}-{RUN}", host=host_id))

    def assert_code(self, code, fn, *args):
        with self.assertRaises(grpc.RpcError) as ctx:
            fn(*args)
        err = ctx.exception
        self.assertEqual(err.code(), code, f"expected {code.name}, got {err.code().name}: {err.details()}")
        return err

    def assert_rule(self, rule, fn, *args):
        """fn(*args) fails FAILED_PRECONDITION whose google.rpc.PreconditionFailure names `rule`."""
        err = self.assert_code(grpc.StatusCode.FAILED_PRECONDITION, fn, *args)
        self.assertEqual(precondition_rules(err), [rule], err.details())
        return err

    def assert_fields(self, fields, fn, *args):
        """fn(*args) fails INVALID_ARGUMENT whose google.rpc.BadRequest names exactly `fields`."""
        err = self.assert_code(grpc.StatusCode.INVALID_ARGUMENT, fn, *args)
        self.assertEqual(bad_fields(err), fields, err.details())
        return err

    def register_host(self, name, req_id=None):
        req = pb.RegisterHostRequest(
            request_id=req_id or request_id("host"),
            idno=valid_idno(),
            details=pb.HostDetails(
                kind=pb.HOST_KIND_PUBLIC_EMPLOYER, name=f"{name} {RUN}", district="Cahul",
                contact=pb.HostContact(name="HR office", email=f"hr.{RUN}@host.example.md", phone="+37329912345"),
                hosts=["Dams", "Irrigation"]))
        resp = self.caseworker.RegisterHost(req)
        self.seen(resp.position)
        return req, resp

    def offer_terms(self, start_from, start_until, places=2):
        return pb.OfferTerms(
            kind=pb.PLACEMENT_KIND_GRADUATE_PLACEMENT, subject=SUBJECT, places=places, term_months=TERM,
            allowance=mdl(ALLOWANCE), travel_cap=mdl(TRAVEL_CAP),
            start_from=pbdate(start_from), start_until=pbdate(start_until), languages=["ro", "en"])

    def publish_offer(self, host_id, start_from, start_until):
        resp = self.caseworker.PublishOffer(pb.PublishOfferRequest(
            request_id=request_id("offer"), host_id=host_id, terms=self.offer_terms(start_from, start_until)))
        self.seen(resp.position)
        return resp.offer_id

    def register_person(self, family, category=regpb.CATEGORY_OVERSEAS_GRADUATE, profession=SUBJECT,
                        skills=("dams", "irrigation", "cooking"), languages=("ro", "en"), consent=True):
        """Registers a person in the registry (with programme-participation consent unless
        told); returns (person id, registry position, request)."""
        req = regpb.RegisterPersonRequest(
            request_id=request_id("person"),
            details=regpb.PersonDetails(
                given_name="Ion", family_name=f"{family}{RUN.capitalize()}",
                birth_date=date_pb2.Date(year=1998, month=3, day=1), languages=list(languages),
                profession=profession, skills=list(skills)),
            contacts=regpb.Contacts(email=f"{family.lower()}.{RUN}@example.md", phone="+3736" + random_digits(7)),
            country_of_residence="DE",
            categories=[category],
            interests=[regpb.INTEREST_PLACEMENT])
        resp = self.registry.RegisterPerson(req)
        position = resp.position
        if consent:
            position = self.registry.GiveConsent(regpb.GiveConsentRequest(
                request_id=request_id("consent"), person_id=resp.person_id,
                purpose=regpb.CONSENT_PURPOSE_PROGRAMME_PARTICIPATION,
                channel=regpb.CONSENT_CHANNEL_IN_PERSON)).position
        return resp.person_id, position, req

    def get_placement(self, client, placement_id):
        return client.GetPlacement(pb.GetPlacementRequest(
            placement_id=placement_id, min_position=self.position)).placement

    def propose_to_start(self, offer_id, person_id, registry_position, start, signed_on):
        """Proposed, accepted, signed and started on `start`; returns the placement id."""
        resp = self.caseworker.ProposePlacement(pb.ProposePlacementRequest(
            request_id=request_id("propose"), offer_id=offer_id, person_id=person_id,
            min_registry_position=registry_position))
        self.seen(resp.position)
        pid = resp.placement_id
        self.seen(self.caseworker.AcceptPlacement(pb.AcceptPlacementRequest(
            request_id=request_id("accept"), placement_id=pid)).position)
        self.seen(self.caseworker.SignAgreement(pb.SignAgreementRequest(
            request_id=request_id("sign"), placement_id=pid, signed_on=pbdate(signed_on), start_on=pbdate(start),
            reference=f"AG-{RUN}")).position)
        self.seen(self.caseworker.StartPlacement(pb.StartPlacementRequest(
            request_id=request_id("start"), placement_id=pid, started_on=pbdate(start))).position)
        return pid

    def views(self):
        """The programme-wide views, for before-and-after comparisons: the MDL budget line,
        the graduates' progress, and the outcomes counted."""
        lines = self.finance.GetBudget(pb.GetBudgetRequest(min_position=self.position)).lines
        mdl_lines = [line for line in lines if line.currency == "MDL"]
        budget = mdl_lines[0] if mdl_lines else pb.BudgetLine(currency="MDL")
        progress = {k.kind: k for k in self.viewer.GetProgress(
            pb.GetProgressRequest(min_position=self.position)).kinds}
        outcomes = {(c.stage, c.kind): c.count for c in self.viewer.GetOutcomes(
            pb.GetOutcomesRequest(min_position=self.position)).counts}
        return budget, progress, outcomes

    def all_pages(self, call, request, items, max_pages=50):
        """Every item of a paged list, following next_page_token to the end."""
        found = []
        for _ in range(max_pages):
            resp = call(request)
            found.extend(getattr(resp, items))
            if not resp.next_page_token:
                return found
            request.page_token = resp.next_page_token
        self.fail(f"{items}: paging does not end")

    def payments_due(self, placement_id, include_unconfirmed):
        lines = self.all_pages(self.finance.ListPaymentsDue, pb.ListPaymentsDueRequest(
            include_unconfirmed=include_unconfirmed, page_size=200, min_position=self.position), "payments")
        return [line for line in lines if line.placement_id == placement_id]

    def candidates(self, offer_id, min_registry_position=0):
        return self.all_pages(self.caseworker.ListCandidates, pb.ListCandidatesRequest(
            offer_id=offer_id, page_size=200, min_registry_position=min_registry_position), "candidates")

    # ------------------------------------------------------------------ 1. six months

    def test_01_a_graduates_six_months_from_offer_to_outcome(self):
        day = today()
        start = day - timedelta(days=STARTED_DAYS_AGO)
        term_end = add_months(start, TERM)
        self.assertLess(term_end, day)

        # A host institution and its graduate offer (the window reaches back to the start).
        host_req, host = self.register_host("Apele Moldovei")
        again = self.caseworker.RegisterHost(host_req)
        self.assertEqual((again.host_id, again.position), (host.host_id, host.position), "a retry, same answer")
        _, other_host = self.register_host("Drumuri Nord")
        offer_id = self.publish_offer(host.host_id, start - timedelta(days=10), day + timedelta(days=30))
        # (ListCandidates waits for a registry position only, so the offer is read here first.)
        offer = self.viewer.GetOffer(pb.GetOfferRequest(offer_id=offer_id, min_position=self.position)).offer
        self.assertEqual((offer.host_id, offer.terms.term_months, offer.places_taken), (host.host_id, TERM, 0))
        before_budget, before_progress, before_outcomes = self.views()

        # Graduates in the registry; only those with programme consent are candidates, the
        # best fit first; a scientist is a candidate for assignments, not for this offer.
        ion, _, ion_req = self.register_person("Rusu")
        cook, _, _ = self.register_person("Ciobanu", profession="Cook", skills=("cooking",), languages=("fr",))
        silent, _, _ = self.register_person("Munteanu", consent=False)
        scientist, registry_position, _ = self.register_person("Lupu", category=regpb.CATEGORY_DIASPORA_SCIENTIST)
        candidates = self.candidates(offer_id, registry_position)
        ids = [c.person_id for c in candidates]
        self.assertEqual(ids[0], ion, candidates)
        first = candidates[0]
        self.assertTrue(first.subject_match)
        self.assertEqual([s.lower() for s in first.matching_skills], ["dams", "irrigation"])
        self.assertEqual(list(first.matching_languages), ["ro", "en"])
        self.assertIn(f"profession {SUBJECT.lower()} matches", first.reason)
        self.assertIn("speaks ro, en", first.reason)
        self.assertIn(cook, ids)
        self.assertLess(candidates[ids.index(cook)].score, first.score)
        self.assertNotIn(silent, ids, "no programme consent")
        self.assertNotIn(scientist, ids, "not a graduate")

        # Proposed (a retry answers the same placement), accepted, signed, started.
        propose = pb.ProposePlacementRequest(request_id=request_id("propose"), offer_id=offer_id,
                                             person_id=ion, min_registry_position=registry_position)
        proposed = self.caseworker.ProposePlacement(propose)
        self.seen(proposed.position)
        again = self.caseworker.ProposePlacement(propose)
        self.assertEqual((again.placement_id, again.position), (proposed.placement_id, proposed.position))
        pid = proposed.placement_id
        self.assert_rule("ONE_ACTIVE_PLACEMENT", self.caseworker.ProposePlacement, pb.ProposePlacementRequest(
            request_id=request_id("propose"), offer_id=offer_id, person_id=ion))
        self.assertNotIn(ion, [c.person_id for c in self.candidates(offer_id)], "placed people are no candidates")
        self.seen(self.caseworker.AcceptPlacement(pb.AcceptPlacementRequest(
            request_id=request_id("accept"), placement_id=pid)).position)
        self.seen(self.caseworker.SignAgreement(pb.SignAgreementRequest(
            request_id=request_id("sign"), placement_id=pid, signed_on=pbdate(start - timedelta(days=3)),
            start_on=pbdate(start), reference=f"AG-{RUN}-1")).position)
        start_req = pb.StartPlacementRequest(request_id=request_id("start"), placement_id=pid,
                                             started_on=pbdate(start))
        started = self.seen(self.caseworker.StartPlacement(start_req).position)
        self.assertEqual(self.caseworker.StartPlacement(start_req).position, started, "a retry, same position")

        # The deadline worker records the six months as due (today is past the term's end).
        def all_due():
            p = self.get_placement(self.caseworker, pid)
            return p if len([m for m in p.months if m.HasField("due")]) == TERM else None

        placement = poll("the deadline worker to record six months due", all_due, DUE_WAIT)
        self.assertEqual(placement.status, pb.PLACEMENT_STATUS_STARTED)
        self.assertEqual((placement.person_id, placement.offer_id, placement.host_id), (ion, offer_id, host.host_id))
        self.assertEqual(pydate(placement.started_on), start)
        self.assertEqual(placement.person.name, f"Ion {ion_req.details.family_name}")
        self.assertEqual(placement.person.email, ion_req.contacts.email)
        for k, month in enumerate(placement.months, start=1):
            self.assertEqual(month.month, k)
            self.assertEqual(pydate(getattr(month, "from")), add_months(start, k - 1))
            self.assertEqual(pydate(month.due_on), add_months(start, k))
            self.assertEqual(month.due, mdl(ALLOWANCE))
            self.assertFalse(month.present)
            self.assertFalse(month.HasField("paid"))

        # Finance's list: months not yet confirmed only when asked for.
        self.assertEqual(self.payments_due(pid, include_unconfirmed=False), [])
        unconfirmed = self.payments_due(pid, include_unconfirmed=True)
        self.assertEqual([(line.month, line.present, line.host_id) for line in unconfirmed],
                         [(k, False, host.host_id) for k in range(1, TERM + 1)])
        self.assert_rule("PRESENCE_NOT_CONFIRMED", self.finance.RecordAllowancePayment,
                         pb.RecordAllowancePaymentRequest(
                             request_id=request_id("pay"), placement_id=pid, month=1, amount=mdl(ALLOWANCE),
                             paid_on=pbdate(day), reference=f"OP-{RUN}-0"))

        # The host confirms presence, each month; another host cannot, nor a caseworker.
        host_client = self.host_client(host.host_id, "a")
        other_client = self.host_client(other_host.host_id, "b")
        confirm1 = pb.ConfirmPresenceRequest(request_id=request_id("presence"), placement_id=pid, month=1)
        self.assert_code(grpc.StatusCode.NOT_FOUND, other_client.ConfirmPresence, confirm1)
        self.assert_code(grpc.StatusCode.PERMISSION_DENIED, self.caseworker.ConfirmPresence, confirm1)
        confirmed = self.seen(host_client.ConfirmPresence(confirm1).position)
        self.assertEqual(host_client.ConfirmPresence(confirm1).position, confirmed, "a retry, same position")
        for k in range(2, TERM + 1):
            self.seen(host_client.ConfirmPresence(pb.ConfirmPresenceRequest(
                request_id=request_id("presence"), placement_id=pid, month=k)).position)
        self.assert_rule("PRESENCE_ALREADY_CONFIRMED", host_client.ConfirmPresence, pb.ConfirmPresenceRequest(
            request_id=request_id("presence"), placement_id=pid, month=1))
        # The host reads its own placement; the other host does not find it.
        self.assertEqual(self.get_placement(host_client, pid).status, pb.PLACEMENT_STATUS_STARTED)
        self.assert_code(grpc.StatusCode.NOT_FOUND, self.get_placement, other_client, pid)
        listed = self.all_pages(other_client.ListPlacements, pb.ListPlacementsRequest(
            host_id=host.host_id, page_size=200, min_position=self.position), "placements")
        self.assertNotIn(pid, [p.placement_id for p in listed])

        # The payment list: six months, presence confirmed, the first overdue; hosts do not read it.
        due = self.payments_due(pid, include_unconfirmed=False)
        self.assertEqual([(line.month, line.present, line.due) for line in due],
                         [(k, True, mdl(ALLOWANCE)) for k in range(1, TERM + 1)])
        self.assertTrue(due[0].overdue)
        self.assertEqual([pydate(line.due_on) for line in due], [add_months(start, k) for k in range(1, TERM + 1)])
        self.assert_code(grpc.StatusCode.PERMISSION_DENIED, host_client.ListPaymentsDue,
                         pb.ListPaymentsDueRequest())

        # Finance pays each month: not a caseworker, not above what is due, not twice.
        def pay(month, amount=ALLOWANCE, req_id=None):
            return pb.RecordAllowancePaymentRequest(
                request_id=req_id or request_id("pay"), placement_id=pid, month=month, amount=mdl(amount),
                paid_on=pbdate(day), reference=f"OP-{RUN}-{month}")

        self.assert_code(grpc.StatusCode.PERMISSION_DENIED, self.caseworker.RecordAllowancePayment, pay(1))
        self.assert_rule("PAYMENT_ABOVE_DUE", self.finance.RecordAllowancePayment, pay(1, ALLOWANCE + 1))
        first_pay = pay(1)
        paid = self.seen(self.finance.RecordAllowancePayment(first_pay).position)
        self.assertEqual(self.finance.RecordAllowancePayment(first_pay).position, paid, "a retry, same position")
        self.assert_rule("MONTH_ALREADY_PAID", self.finance.RecordAllowancePayment, pay(1))
        # The same request id for another payment is refused, and pays nothing.
        self.assert_code(grpc.StatusCode.FAILED_PRECONDITION, self.finance.RecordAllowancePayment,
                         pay(2, req_id=first_pay.request_id))
        for k in range(2, TERM + 1):
            self.seen(self.finance.RecordAllowancePayment(pay(k)).position)
        self.assertEqual(self.payments_due(pid, include_unconfirmed=True), [], "nothing left to pay")

        # Travel: a claim approved within the cap and paid by finance; another over the cap.
        submit = pb.SubmitTravelClaimRequest(request_id=request_id("travel"), placement_id=pid, kind="flight",
                                             amount=mdl(150_000), receipt_reference=f"R-{RUN}-1")
        claim = self.caseworker.SubmitTravelClaim(submit)
        self.seen(claim.position)
        again = self.caseworker.SubmitTravelClaim(submit)
        self.assertEqual((again.claim_id, again.position), (claim.claim_id, claim.position), "a retry, same claim")
        self.seen(self.caseworker.ApproveTravelClaim(pb.ApproveTravelClaimRequest(
            request_id=request_id("approve"), placement_id=pid, claim_id=claim.claim_id,
            amount=mdl(120_000))).position)
        second = self.caseworker.SubmitTravelClaim(pb.SubmitTravelClaimRequest(
            request_id=request_id("travel"), placement_id=pid, kind="train", amount=mdl(90_000),
            receipt_reference=f"R-{RUN}-2"))
        self.seen(second.position)
        self.assert_rule("TRAVEL_OVER_CAP", self.caseworker.ApproveTravelClaim, pb.ApproveTravelClaimRequest(
            request_id=request_id("approve"), placement_id=pid, claim_id=second.claim_id, amount=mdl(90_000)))
        self.seen(self.caseworker.RejectTravelClaim(pb.RejectTravelClaimRequest(
            request_id=request_id("reject"), placement_id=pid, claim_id=second.claim_id,
            reason="over the travel cap")).position)
        pay_travel = pb.PayTravelClaimRequest(request_id=request_id("pay-travel"), placement_id=pid,
                                              claim_id=claim.claim_id, paid_on=pbdate(day),
                                              reference=f"OT-{RUN}-1")
        self.assert_code(grpc.StatusCode.PERMISSION_DENIED, self.caseworker.PayTravelClaim, pay_travel)
        self.seen(self.finance.PayTravelClaim(pay_travel).position)

        # Completed (the term is over), and its outcome at completion.
        complete = pb.CompletePlacementRequest(request_id=request_id("complete"), placement_id=pid,
                                               completed_on=pbdate(day))
        completed = self.seen(self.caseworker.CompletePlacement(complete).position)
        self.assertEqual(self.caseworker.CompletePlacement(complete).position, completed, "a retry, same position")
        self.seen(self.caseworker.RecordOutcome(pb.RecordOutcomeRequest(
            request_id=request_id("outcome"), placement_id=pid, stage=pb.OUTCOME_STAGE_COMPLETION,
            kind=pb.OUTCOME_KIND_EMPLOYED_IN_MOLDOVA, recorded_on=pbdate(day))).position)

        placement = self.get_placement(self.caseworker, pid)
        self.assertEqual(placement.status, pb.PLACEMENT_STATUS_COMPLETED)
        self.assertEqual(pydate(placement.ended_on), term_end)
        self.assertEqual(placement.outcome_at_completion, pb.OUTCOME_KIND_EMPLOYED_IN_MOLDOVA)
        self.assertEqual([(m.month, m.present, m.paid, pydate(m.paid_on), m.payment_reference)
                          for m in placement.months],
                         [(k, True, mdl(ALLOWANCE), day, f"OP-{RUN}-{k}") for k in range(1, TERM + 1)])
        claims = {c.claim_id: c for c in placement.travel_claims}
        self.assertEqual(set(claims), {claim.claim_id, second.claim_id})
        first_claim = claims[claim.claim_id]
        self.assertEqual((first_claim.requested, first_claim.approved, first_claim.paid, first_claim.rejected),
                         (mdl(150_000), mdl(120_000), True, False))
        self.assertTrue(claims[second.claim_id].rejected)
        self.assertFalse(claims[second.claim_id].HasField("approved"))
        self.assertFalse(self.get_placement(host_client, pid).HasField("person"),
                         "the host no longer sees the person once the placement is over")

        # The programme's views count it: committed against paid, outcomes, progress.
        budget, progress, outcomes = self.views()
        self.assertEqual(budget.allowances_committed_minor - before_budget.allowances_committed_minor,
                         TERM * ALLOWANCE)
        self.assertEqual(budget.travel_committed_minor - before_budget.travel_committed_minor, TRAVEL_CAP)
        self.assertEqual(budget.allowances_paid_minor - before_budget.allowances_paid_minor, TERM * ALLOWANCE)
        self.assertEqual(budget.travel_paid_minor - before_budget.travel_paid_minor, 120_000)
        key = (pb.OUTCOME_STAGE_COMPLETION, pb.OUTCOME_KIND_EMPLOYED_IN_MOLDOVA)
        self.assertEqual(outcomes.get(key, 0) - before_outcomes.get(key, 0), 1)
        graduates, before = progress[pb.PLACEMENT_KIND_GRADUATE_PLACEMENT], \
            before_progress[pb.PLACEMENT_KIND_GRADUATE_PLACEMENT]
        self.assertEqual(graduates.target, 43)
        self.assertEqual(progress[pb.PLACEMENT_KIND_SCIENTIFIC_ASSIGNMENT].target, 31)
        self.assertEqual((graduates.placed - before.placed, graduates.completed - before.completed,
                          graduates.running - before.running), (1, 1, 0))

    # ------------------------------------------------------------------ 2. the host's view

    def test_02_the_host_sees_the_persons_contacts_only_while_the_placement_runs(self):
        day = today()
        _, host = self.register_host("Universitatea Agrară")
        _, other_host = self.register_host("Institutul de Ecologie")
        offer_id = self.publish_offer(host.host_id, day - timedelta(days=30), day + timedelta(days=30))
        person, registry_position, req = self.register_person("Popa")
        host_client = self.host_client(host.host_id, "c")
        other_client = self.host_client(other_host.host_id, "d")

        proposed = self.caseworker.ProposePlacement(pb.ProposePlacementRequest(
            request_id=request_id("propose"), offer_id=offer_id, person_id=person,
            min_registry_position=registry_position))
        self.seen(proposed.position)
        pid = proposed.placement_id
        # Proposed: the host sees its placement, not who it is for.
        p = self.get_placement(host_client, pid)
        self.assertEqual((p.status, p.HasField("person")), (pb.PLACEMENT_STATUS_PROPOSED, False))
        self.assertEqual(p.person_id, person)
        self.seen(self.caseworker.AcceptPlacement(pb.AcceptPlacementRequest(
            request_id=request_id("accept"), placement_id=pid)).position)
        self.assertFalse(self.get_placement(host_client, pid).HasField("person"))

        # Signed, then running: the name, e-mail and phone.
        start = day - timedelta(days=10)
        self.seen(self.caseworker.SignAgreement(pb.SignAgreementRequest(
            request_id=request_id("sign"), placement_id=pid, signed_on=pbdate(start - timedelta(days=1)),
            start_on=pbdate(start), reference=f"AG-{RUN}-2")).position)
        contacts = pb.PlacedPerson(name=f"Ion {req.details.family_name}", email=req.contacts.email,
                                   phone=req.contacts.phone)
        self.assertEqual(self.get_placement(host_client, pid).person, contacts)
        self.seen(self.caseworker.StartPlacement(pb.StartPlacementRequest(
            request_id=request_id("start"), placement_id=pid, started_on=pbdate(start))).position)
        self.assertEqual(self.get_placement(host_client, pid).person, contacts)
        listed = self.all_pages(host_client.ListPlacements, pb.ListPlacementsRequest(
            page_size=200, min_position=self.position), "placements")
        self.assertIn(pid, [p.placement_id for p in listed])
        # Staff see the same; finance the name only; a viewer nothing; another host nothing at all.
        self.assertEqual(self.get_placement(self.caseworker, pid).person, contacts)
        self.assertEqual(self.get_placement(self.finance, pid).person, pb.PlacedPerson(name=contacts.name))
        self.assertFalse(self.get_placement(self.viewer, pid).HasField("person"))
        self.assert_code(grpc.StatusCode.NOT_FOUND, self.get_placement, other_client, pid)
        self.assert_code(grpc.StatusCode.UNAUTHENTICATED, self.get_placement, self.anonymous, pid)

        # Ended early: the contacts are gone from the host's view.
        self.seen(self.caseworker.EndPlacementEarly(pb.EndPlacementEarlyRequest(
            request_id=request_id("end"), placement_id=pid, ended_on=pbdate(day),
            reason="employed elsewhere")).position)
        p = self.get_placement(host_client, pid)
        self.assertEqual((p.status, p.HasField("person")), (pb.PLACEMENT_STATUS_ENDED_EARLY, False))

    # ------------------------------------------------------------------ 3. bad input

    def test_03_bad_input_is_invalid_argument_naming_every_field(self):
        day = today()
        _, host = self.register_host("Moldsilva")
        terms = self.offer_terms(day, day + timedelta(days=30))
        terms.places = 0
        terms.allowance.CopyFrom(money_pb2.Money(amount_minor=-1, currency="XX"))
        del terms.languages[:]
        terms.languages.append("!!")
        self.assert_fields(
            ["host_id", "terms.places", "terms.allowance.currency", "terms.allowance.amount_minor",
             "terms.languages[0]"],
            self.caseworker.PublishOffer,
            pb.PublishOfferRequest(request_id=request_id("offer"), host_id="not-a-uuid", terms=terms))
        self.assert_fields(
            ["request_id", "month", "amount", "paid_on", "reference"],
            self.finance.RecordAllowancePayment,
            pb.RecordAllowancePaymentRequest(request_id="bad id!", placement_id=uuid7(), month=0,
                                             paid_on=date_pb2.Date(year=2027, month=2, day=30)))
        idno = valid_idno()
        self.assert_fields(["idno"], self.caseworker.RegisterHost, pb.RegisterHostRequest(
            request_id=request_id("host"), idno=idno[:12] + str((int(idno[12]) + 1) % 10),
            details=pb.HostDetails(kind=pb.HOST_KIND_UNIVERSITY, name="Bad IDNO", district="Cahul",
                                   contact=pb.HostContact(name="HR", email="hr@example.md"), hosts=["Law"])))
        self.assert_fields(["offer_id", "person_id"], self.caseworker.ProposePlacement,
                           pb.ProposePlacementRequest(request_id=request_id("propose"), offer_id="x",
                                                      person_id=""))
        # Well-formed but unknown: NOT_FOUND.
        self.assert_code(grpc.StatusCode.NOT_FOUND, self.caseworker.ProposePlacement, pb.ProposePlacementRequest(
            request_id=request_id("propose"), offer_id=uuid7(), person_id=uuid7()))
        self.assert_code(grpc.StatusCode.NOT_FOUND, self.viewer.GetHost,
                         pb.GetHostRequest(host_id=uuid7(), min_position=self.position))
        # Nothing of it was written: the host has no offer.
        offers = self.viewer.ListOffers(pb.ListOffersRequest(host_id=host.host_id, include_closed=True,
                                                             min_position=self.position))
        self.assertEqual(list(offers.offers), [])


if __name__ == "__main__":
    main(PlacementsE2E, __doc__)
