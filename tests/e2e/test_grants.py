"""End-to-end test of the grants service over gRPC: one woman entrepreneur from her
application to a monitoring visit of her business.

A caseworker registers her in the registry — a woman entrepreneur, 30 years old, from the
village of Mereni in Anenii Noi, with programme-participation consent. An admin opens a call
(10,000.00 EUR, at most 2,000.00 EUR a grant, for youth or women entrepreneurs aged 18 to 45
in rural localities of Anenii Noi, two weighted criteria, two evaluators, a pass score). She
applies (the call waits for the registry position of her consent: the grants worker projects
the registry, through the registry's PersonDataService, ACASA_REGISTRY_URL) and is eligible.
She is enrolled in a one-day entrepreneurs' session held today, attends, and completes it
with certificate "<code>-001". She submits a business plan; two evaluators score it with their
own tokens, a third declares a conflict of interest and is then refused scoring
(EVALUATOR_CONFLICT); the committee (an admin) approves 1,800.00 EUR with the minutes'
reference, and the call has 8,200.00 EUR left. Items are ordered within the approved amount
(one more is OVER_APPROVED), delivered, paid by finance and handed over with a handover
record; a monitoring visit finds the business operating with two jobs. Her application shows
all of it; the funnel of the call counts her at every stage, the budget and grants-by-district
views count her grant, and progress counts one more grant against the target of 101.
Retried commands (the same request_id) answer what they answered first. Smaller tests: bad
input is INVALID_ARGUMENT naming the field, a viewer is refused commands but reads the
aggregate views, and a man applying to a call for women is recorded ineligible, naming SEX.

Run by scripts/e2e.sh, which generates the Python stubs from proto/ (PYTHONPATH), starts
nats-server, Postgres and every service with its worker (the grants worker told where the
registry is, ACASA_REGISTRY_URL), and sets:

  E2E_GRANTS_ADDR      the grants service's gRPC address (default 127.0.0.1:50053)
  E2E_REGISTRY_ADDR    the registry's gRPC address (default: E2E_GRPC_ADDR, then 127.0.0.1:50051)
  E2E_ACASA_BIN        the acasa binary, for `acasa token`; the ACASA_* variables are
                       inherited from the script (the targets at their defaults: 540 trained,
                       101 grants)

Plain unittest; each test registers its own people and opens its own calls (names unique per
run), so tests are independent of each other and of data already there: the programme-wide
progress is compared before and after. Reads wait for the writes' positions (min_position,
min_registry_position), never for time. Ends with "e2e: N passed, M failed" and exits non-zero
on any failure. Option: -k PATTERN (repeatable, like unittest's).
"""

import os
import unittest
from datetime import date, datetime, timezone

import grpc

from acasa.grants.v1 import grants_pb2 as pb
from acasa.grants.v1 import grants_pb2_grpc as pb_grpc
from acasa.registry.v1 import registry_pb2 as regpb
from acasa.registry.v1 import registry_pb2_grpc as regpb_grpc
from acasa.type.v1 import date_pb2, money_pb2
from e2e_common import (RUN, Client, bad_fields, main, mint_token, precondition_rules, random_digits, request_id,
                        uuid7, with_check_digit)

GRANTS_ADDR = os.environ.get("E2E_GRANTS_ADDR", "127.0.0.1:50053")
REGISTRY_ADDR = os.environ.get("E2E_REGISTRY_ADDR") or os.environ.get("E2E_GRPC_ADDR", "127.0.0.1:50051")

BUDGET = 1_000_000  # EUR minor units: 10,000.00
CAP = 200_000  # 2,000.00
REQUESTED = 195_000  # 1,950.00
APPROVED = 180_000  # 1,800.00
SEWING_MACHINE = 65_000  # 650.00 each, two of them
OVERLOCK = 45_000  # 450.00
CUTTING_TABLE = 20_000  # 200.00: more than is left to order
DISTRICT = "Anenii Noi"
LOCALITY = "s. Mereni"  # a village (sat): rural
TARGET_TRAINED = 540
TARGET_GRANTS = 101
CRITERIA = (("viability", "Is the business viable?", 60), ("innovation", "What is new in it?", 40))


def today():
    """The service's today: the UTC date."""
    return datetime.now(timezone.utc).date()


def years_ago(n, d):
    """A birth date making someone exactly n on day d (1 January of d's year less n)."""
    return date(d.year - n, 1, 1)


def pbdate(d):
    return date_pb2.Date(year=d.year, month=d.month, day=d.day)


def pydate(d):
    return date(d.year, d.month, d.day)


def eur(amount_minor):
    return money_pb2.Money(amount_minor=amount_minor, currency="EUR")


def valid_idno():
    """A valid IDNO: 13 digits (company codes start with 10), the last the 7-3-1 check digit."""
    return with_check_digit("10" + random_digits(10))


class GrantsE2E(unittest.TestCase):
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        cls.channels = [grpc.insecure_channel(GRANTS_ADDR), grpc.insecure_channel(REGISTRY_ADDR)]
        for channel in cls.channels:
            grpc.channel_ready_future(channel).result(timeout=30)
        stub = pb_grpc.GrantServiceStub(cls.channels[0])
        registry = regpb_grpc.RegistryServiceStub(cls.channels[1])
        cls.stub = stub
        cls.admin_subject = f"e2e-grants-committee-{RUN}"
        cls.admin = Client(stub, mint_token("admin", cls.admin_subject))
        cls.caseworker = Client(stub, mint_token("caseworker", f"e2e-grants-caseworker-{RUN}"))
        cls.finance = Client(stub, mint_token("finance", f"e2e-grants-finance-{RUN}"))
        cls.viewer = Client(stub, mint_token("viewer", f"e2e-grants-viewer-{RUN}"))
        cls.registry = Client(registry, mint_token("caseworker", f"e2e-grants-registrar-{RUN}"))

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

    def evaluator(self, label):
        """A caseworker's client whose token subject is the evaluator's id; (subject, client)."""
        subject = f"e2e-grants-evaluator-{label}-{RUN}"
        return subject, Client(self.stub, mint_token("caseworker", subject))

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

    def register_person(self, given, family, sex, age, category, locality=LOCALITY, district=DISTRICT):
        """Registers a person in the registry with programme-participation consent; returns
        (person id, registry position of the consent)."""
        resp = self.registry.RegisterPerson(regpb.RegisterPersonRequest(
            request_id=request_id("person"),
            details=regpb.PersonDetails(
                given_name=given, family_name=f"{family}{RUN.capitalize()}",
                birth_date=pbdate(years_ago(age, today())), sex=sex,
                home_district=district, home_locality=locality, languages=["ro", "ru"],
                profession="Tailor"),
            contacts=regpb.Contacts(email=f"{given.lower()}.{RUN}@example.md", phone="+3736" + random_digits(7)),
            country_of_residence="MD",
            categories=[category],
            interests=[regpb.INTEREST_ENTREPRENEURSHIP_SUPPORT]))
        consent = self.registry.GiveConsent(regpb.GiveConsentRequest(
            request_id=request_id("consent"), person_id=resp.person_id,
            purpose=regpb.CONSENT_PURPOSE_PROGRAMME_PARTICIPATION,
            channel=regpb.CONSENT_CHANNEL_IN_PERSON))
        return resp.person_id, consent.position

    def call_terms(self, title, sexes=()):
        day = today()
        return pb.CallTerms(
            title=f"{title} {RUN}", budget=eur(BUDGET), cap=eur(CAP),
            opens_on=pbdate(day), closes_on=pbdate(date.fromordinal(day.toordinal() + 30)),
            districts=[DISTRICT], training_places=25,
            eligibility=pb.EligibilityRules(
                age=pb.AgeRange(min_age=18, max_age=45), sexes=list(sexes), rural_only=True,
                categories=[regpb.CATEGORY_WOMAN_ENTREPRENEUR, regpb.CATEGORY_YOUTH_ENTREPRENEUR]),
            evaluation=pb.EvaluationRules(
                criteria=[pb.Criterion(key=k, title=t, weight=w) for k, t, w in CRITERIA],
                scale_max=10, min_evaluators=2, pass_score=600))

    def open_call(self, title, sexes=()):
        resp = self.admin.OpenCall(pb.OpenCallRequest(request_id=request_id("call"),
                                                      terms=self.call_terms(title, sexes)))
        self.seen(resp.position)
        return resp.call_id

    def get_call(self, call_id):
        return self.caseworker.GetCall(pb.GetCallRequest(call_id=call_id, min_position=self.position)).call

    def get_application(self, application_id):
        return self.caseworker.GetApplication(pb.GetApplicationRequest(
            application_id=application_id, min_position=self.position)).application

    def funnel(self, client, call_id):
        """The call's funnel counts (one row, grouped by call; none, or zeros, before any
        application)."""
        rows = client.GetFunnel(pb.GetFunnelRequest(
            call_id=call_id, group_by=[pb.FUNNEL_DIMENSION_CALL], min_position=self.position)).rows
        if not rows:
            return (0, 0, 0, 0, 0, 0, 0)
        self.assertEqual([r.call_id for r in rows], [call_id], rows)
        c = rows[0].counts
        return (c.applied, c.eligible, c.trained, c.plan_submitted, c.approved, c.equipment_delivered,
                c.operating_at_last_visit)

    def progress(self):
        indicators = self.viewer.GetProgress(pb.GetProgressRequest(min_position=self.position)).indicators
        return {i.indicator: (i.target, i.achieved) for i in indicators}

    def score(self, application_id, viability, innovation, req_id=None):
        """A scoring of both criteria."""
        return pb.ScoreApplicationRequest(
            request_id=req_id or request_id("score"), application_id=application_id,
            scores=[pb.CriterionScore(key="viability", score=viability),
                    pb.CriterionScore(key="innovation", score=innovation)],
            comment="a clear plan, local demand")

    # ------------------------------------------------------------------ 1. one woman entrepreneur

    def test_01_a_woman_entrepreneur_from_application_to_a_monitoring_visit(self):
        day = today()
        before = self.progress()

        # She is in the registry: a woman entrepreneur of 30 in a village of Anenii Noi, with
        # programme consent.
        person, registry_position = self.register_person(
            "Maria", "Ceban", regpb.SEX_FEMALE, 30, regpb.CATEGORY_WOMAN_ENTREPRENEUR)

        # The committee opens a call; a retry answers the same call.
        open_req = pb.OpenCallRequest(request_id=request_id("call"),
                                      terms=self.call_terms("Start-up grants, women and youth"))
        opened = self.admin.OpenCall(open_req)
        self.seen(opened.position)
        again = self.admin.OpenCall(open_req)
        self.assertEqual((again.call_id, again.position), (opened.call_id, opened.position), "a retry, same answer")
        call_id = opened.call_id
        self.assert_code(grpc.StatusCode.PERMISSION_DENIED, self.caseworker.OpenCall,
                         pb.OpenCallRequest(request_id=request_id("call"), terms=self.call_terms("Not an admin")))
        call = self.get_call(call_id)
        self.assertEqual((call.budget, call.committed, call.remaining, call.closed, call.opened_by),
                         (eur(BUDGET), eur(0), eur(BUDGET), False, self.admin_subject))

        # She applies, once her consent is projected: eligible. A retry answers the same
        # application; a second application of hers to the call is refused.
        apply_req = pb.ApplyRequest(request_id=request_id("apply"), call_id=call_id, person_id=person,
                                    min_registry_position=registry_position)
        applied = self.caseworker.Apply(apply_req)
        self.seen(applied.position)
        self.assertEqual((applied.eligible, applied.failed_rule), (True, ""))
        again = self.caseworker.Apply(apply_req)
        self.assertEqual((again.application_id, again.position), (applied.application_id, applied.position))
        app_id = applied.application_id
        self.assert_code(grpc.StatusCode.ALREADY_EXISTS, self.caseworker.Apply, pb.ApplyRequest(
            request_id=request_id("apply"), call_id=call_id, person_id=person,
            min_registry_position=registry_position))
        application = self.get_application(app_id)
        self.assertEqual((application.call_id, application.person_id, application.status),
                         (call_id, person, pb.APPLICATION_STATUS_ELIGIBLE))
        self.assertEqual(pydate(application.applied_on), day)
        self.assertEqual(application.district.casefold(), DISTRICT.casefold())
        # No business plan before training.
        plan = pb.BusinessPlan(
            sector="C", summary="A tailoring workshop in Mereni: school uniforms and alterations.",
            requested_amount=eur(REQUESTED),
            items=[pb.PlanItem(description="Industrial sewing machine", quantity=2, unit_price=eur(SEWING_MACHINE)),
                   pb.PlanItem(description="Overlock machine", quantity=1, unit_price=eur(OVERLOCK)),
                   pb.PlanItem(description="Cutting table", quantity=1, unit_price=eur(CUTTING_TABLE))])
        self.assert_rule("TRAINING_NOT_COMPLETED", self.caseworker.SubmitBusinessPlan, pb.SubmitBusinessPlanRequest(
            request_id=request_id("plan"), application_id=app_id, plan=plan))

        # Training: an entrepreneurs' course, a one-day session today; enrolled (seat 1),
        # present, completed with the certificate "<code>-001".
        course = self.caseworker.CreateCourse(pb.CreateCourseRequest(
            request_id=request_id("course"), audience=pb.AUDIENCE_ENTREPRENEURS,
            details=pb.CourseDetails(title=f"Start your business {RUN}",
                                     topics=["business planning", "accounting", "taxation"],
                                     language="ro", hours=8, completion_threshold_percent=80)))
        self.seen(course.position)
        code = f"ANTR-{RUN.upper()}"
        session = self.caseworker.ScheduleSession(pb.ScheduleSessionRequest(
            request_id=request_id("session"), course_id=course.course_id, code=code, capacity=20,
            details=pb.SessionDetails(days=[pbdate(day)], venue="Casa de cultură, s. Mereni", district=DISTRICT,
                                      trainer="Elena Rusu, ODA")))
        self.seen(session.position)
        session_id = session.session_id
        enrol_req = pb.EnrolInSessionRequest(request_id=request_id("enrol"), session_id=session_id,
                                             application_id=app_id)
        enrolled = self.caseworker.EnrolInSession(enrol_req)
        self.seen(enrolled.position)
        self.assertEqual(enrolled.seat, 1)
        again = self.caseworker.EnrolInSession(enrol_req)
        self.assertEqual((again.seat, again.position), (enrolled.seat, enrolled.position), "a retry, same seat")
        self.assertEqual(self.get_application(app_id).status, pb.APPLICATION_STATUS_ENROLLED)
        self.seen(self.caseworker.RecordAttendance(pb.RecordAttendanceRequest(
            request_id=request_id("attendance"), session_id=session_id, day=pbdate(day),
            present_trainee_ids=[app_id])).position)
        completed = self.caseworker.CompleteSession(pb.CompleteSessionRequest(
            request_id=request_id("complete"), session_id=session_id))
        self.seen(completed.position)
        self.assertEqual((completed.completed, completed.not_completed), (1, 0))
        certificate = f"{code}-001"
        roster = self.caseworker.GetSession(pb.GetSessionRequest(session_id=session_id, min_position=self.position))
        self.assertEqual((roster.session.code, roster.session.enrolled, roster.session.completed),
                         (code, 1, 1))
        self.assertEqual(len(roster.trainees), 1, roster.trainees)
        trainee = roster.trainees[0]
        self.assertEqual((trainee.application_id, trainee.seat, trainee.result, trainee.certificate_number),
                         (app_id, 1, pb.TRAINING_RESULT_COMPLETED, certificate))
        self.assertEqual([(pydate(a.day), a.present) for a in trainee.attendance], [(day, True)])
        application = self.get_application(app_id)
        self.assertEqual((application.status, application.certificate_number),
                         (pb.APPLICATION_STATUS_TRAINED, certificate))
        self.assertEqual(self.get_call(call_id).training_places_taken, 1)

        # The business plan.
        self.seen(self.caseworker.SubmitBusinessPlan(pb.SubmitBusinessPlanRequest(
            request_id=request_id("plan"), application_id=app_id, plan=plan)).position)
        self.assertEqual(self.get_application(app_id).status, pb.APPLICATION_STATUS_PLAN_SUBMITTED)

        # Evaluation: each evaluator with their own token. One is not enough for the committee;
        # nobody scores twice; an evaluator who declares a conflict is excluded.
        first, first_client = self.evaluator("a")
        second, second_client = self.evaluator("b")
        third, third_client = self.evaluator("c")
        score_req = self.score(app_id, 8, 7)
        scored = first_client.ScoreApplication(score_req)
        self.seen(scored.position)
        self.assertEqual(scored.weighted_score, 760)  # (8·60 + 7·40) / 100 = 7.60
        again = first_client.ScoreApplication(score_req)
        self.assertEqual((again.weighted_score, again.position), (760, scored.position), "a retry, same answer")
        self.assert_rule("ALREADY_SCORED", first_client.ScoreApplication, self.score(app_id, 9, 9))
        approve = pb.ApproveGrantRequest(request_id=request_id("approve"), application_id=app_id,
                                         amount=eur(APPROVED), minutes_reference=f"PV-COM-{RUN}-3",
                                         note="approved below the request: the cutting table is not funded")
        self.assert_rule("TOO_FEW_EVALUATIONS", self.admin.ApproveGrant,
                         pb.ApproveGrantRequest(request_id=request_id("approve"), application_id=app_id,
                                                amount=eur(APPROVED), minutes_reference=f"PV-COM-{RUN}-2"))
        self.seen(third_client.DeclareConflictOfInterest(pb.DeclareConflictOfInterestRequest(
            request_id=request_id("conflict"), application_id=app_id,
            reason="the applicant is my cousin")).position)
        self.assert_rule("EVALUATOR_CONFLICT", third_client.ScoreApplication, self.score(app_id, 10, 10))
        scored = second_client.ScoreApplication(self.score(app_id, 7, 9))
        self.seen(scored.position)
        self.assertEqual(scored.weighted_score, 780)  # (7·60 + 9·40) / 100 = 7.80

        # The committee approves 1,800.00 EUR (a caseworker may not): committed on the call.
        self.assert_code(grpc.StatusCode.PERMISSION_DENIED, self.caseworker.ApproveGrant, approve)
        approved = self.admin.ApproveGrant(approve)
        self.seen(approved.position)
        self.assertEqual(approved.remaining, eur(BUDGET - APPROVED))
        again = self.admin.ApproveGrant(approve)
        self.assertEqual((again.remaining, again.position), (approved.remaining, approved.position))
        call = self.get_call(call_id)
        self.assertEqual((call.committed, call.remaining, call.applications),
                         (eur(APPROVED), eur(820_000), 1))

        # In kind: items ordered within the approved amount; one more is over what is left.
        supplier = pb.Supplier(name=f"Textil Utilaj SRL {RUN}", idno=valid_idno())
        machines = self.caseworker.OrderItem(pb.OrderItemRequest(
            request_id=request_id("order"), application_id=app_id,
            item=pb.ProcurementItem(description="Industrial sewing machine", supplier=supplier, quantity=2,
                                    unit_price=eur(SEWING_MACHINE))))
        self.seen(machines.position)
        self.assertEqual(machines.remaining, eur(APPROVED - 2 * SEWING_MACHINE))
        overlock = self.caseworker.OrderItem(pb.OrderItemRequest(
            request_id=request_id("order"), application_id=app_id,
            item=pb.ProcurementItem(description="Overlock machine", supplier=supplier, quantity=1,
                                    unit_price=eur(OVERLOCK))))
        self.seen(overlock.position)
        left = APPROVED - 2 * SEWING_MACHINE - OVERLOCK
        self.assertEqual(overlock.remaining, eur(left))
        self.assertGreater(CUTTING_TABLE, left)
        self.assert_rule("OVER_APPROVED", self.caseworker.OrderItem, pb.OrderItemRequest(
            request_id=request_id("order"), application_id=app_id,
            item=pb.ProcurementItem(description="Cutting table", supplier=supplier, quantity=1,
                                    unit_price=eur(CUTTING_TABLE))))
        items = [machines.item_id, overlock.item_id]
        for k, item_id in enumerate(items, start=1):
            self.seen(self.caseworker.RecordDelivery(pb.RecordDeliveryRequest(
                request_id=request_id("delivery"), application_id=app_id, item_id=item_id,
                delivered_on=pbdate(day), delivery_note_reference=f"AL-{RUN}-{k}")).position)
        # Finance pays the supplier (a caseworker may not).
        for k, item_id in enumerate(items, start=1):
            pay = pb.RecordSupplierPaymentRequest(request_id=request_id("pay"), application_id=app_id,
                                                  item_id=item_id, paid_on=pbdate(day),
                                                  payment_reference=f"OP-{RUN}-{k}")
            if k == 1:
                self.assert_code(grpc.StatusCode.PERMISSION_DENIED, self.caseworker.RecordSupplierPayment, pay)
            self.seen(self.finance.RecordSupplierPayment(pay).position)
        handover = pb.Handover(reference=f"PV-PP-{RUN}-1", item_ids=items, handed_over_on=pbdate(day),
                               location="s. Mereni, Anenii Noi", note="installed and working")
        self.seen(self.caseworker.HandOverItems(pb.HandOverItemsRequest(
            request_id=request_id("handover"), application_id=app_id, handover=handover)).position)

        # A monitoring visit: the business operates, two jobs created.
        visit = pb.MonitoringVisit(visited_on=pbdate(day), officer="Ion Munteanu, monitoring officer",
                                   operating=True, jobs_created=2,
                                   findings="The workshop operates; two seamstresses employed.")
        self.seen(self.caseworker.RecordMonitoringVisit(pb.RecordMonitoringVisitRequest(
            request_id=request_id("visit"), application_id=app_id, visit=visit)).position)

        # Her application, the whole way.
        application = self.get_application(app_id)
        self.assertEqual(application.status, pb.APPLICATION_STATUS_APPROVED)
        self.assertEqual(application.certificate_number, certificate)
        self.assertEqual(application.plan, plan)
        evaluations = {e.evaluator: e for e in application.evaluations}
        self.assertEqual(set(evaluations), {first, second, third})
        self.assertEqual([(evaluations[s].weighted_score, evaluations[s].conflict_declared) for s in (first, second)],
                         [(760, False), (780, False)])
        self.assertTrue(evaluations[third].conflict_declared)
        self.assertEqual(evaluations[third].conflict_reason, "the applicant is my cousin")
        self.assertEqual(list(evaluations[third].scores), [])
        self.assertEqual(application.final_score, 770)  # the mean of 7.60 and 7.80
        decision = application.decision
        self.assertEqual((decision.approved, decision.amount, decision.score, decision.minutes_reference,
                          decision.decided_by),
                         (True, eur(APPROVED), 770, approve.minutes_reference, self.admin_subject))
        by_id = {i.item_id: i for i in application.items}
        self.assertEqual(set(by_id), set(items))
        self.assertEqual([(by_id[i].status, by_id[i].handover_reference, pydate(by_id[i].paid_on))
                          for i in items], [(pb.ITEM_STATUS_HANDED_OVER, handover.reference, day)] * 2)
        self.assertEqual((by_id[items[0]].total, by_id[items[1]].total), (eur(2 * SEWING_MACHINE), eur(OVERLOCK)))
        self.assertEqual([(h.reference, sorted(h.item_ids)) for h in application.handovers],
                         [(handover.reference, sorted(items))])
        self.assertEqual(list(application.visits), [visit])
        self.assertEqual(application.spent, eur(2 * SEWING_MACHINE + OVERLOCK))

        # The call's budget: committed, ordered, spent, what remains.
        call = self.get_call(call_id)
        spent = eur(2 * SEWING_MACHINE + OVERLOCK)
        self.assertEqual((call.budget, call.committed, call.ordered, call.spent, call.remaining),
                         (eur(BUDGET), eur(APPROVED), spent, spent, eur(820_000)))
        budget = self.finance.GetBudget(pb.GetBudgetRequest(call_id=call_id, min_position=self.position)).calls
        self.assertEqual([(b.call_id, b.committed, b.ordered, b.spent, b.remaining) for b in budget],
                         [(call_id, eur(APPROVED), spent, spent, eur(820_000))])

        # The views: the funnel of the call counts her at every stage (the viewer reads it too),
        # her district's grants, and one more grant and one more trained against the targets.
        self.assertEqual(self.funnel(self.caseworker, call_id), (1, 1, 1, 1, 1, 1, 1))
        self.assertEqual(self.funnel(self.viewer, call_id), (1, 1, 1, 1, 1, 1, 1))
        districts = self.viewer.GetGrantsByDistrict(pb.GetGrantsByDistrictRequest(
            call_id=call_id, min_position=self.position)).districts
        self.assertEqual([(d.district.casefold(), d.currency, d.grants, d.approved_minor, d.spent_minor, d.operating,
                           d.jobs_created) for d in districts],
                         [(DISTRICT.casefold(), "EUR", 1, APPROVED, 2 * SEWING_MACHINE + OVERLOCK, 1, 2)])
        completion = self.viewer.GetTrainingCompletion(pb.GetTrainingCompletionRequest(
            course_id=course.course_id, min_position=self.position)).courses
        self.assertEqual([(c.course_id, c.audience, c.enrolled, c.completed, c.not_completed, c.in_progress)
                          for c in completion],
                         [(course.course_id, pb.AUDIENCE_ENTREPRENEURS, 1, 1, 0, 0)])
        after = self.progress()
        grants_before = before.get(pb.INDICATOR_GRANTS_AWARDED, (TARGET_GRANTS, 0))[1]
        trained_before = before.get(pb.INDICATOR_ENTREPRENEURS_TRAINED, (TARGET_TRAINED, 0))[1]
        self.assertEqual(after[pb.INDICATOR_GRANTS_AWARDED], (TARGET_GRANTS, grants_before + 1))
        self.assertEqual(after[pb.INDICATOR_ENTREPRENEURS_TRAINED], (TARGET_TRAINED, trained_before + 1))

    # ------------------------------------------------------------------ 2. bad input, roles

    def test_02_bad_input_is_invalid_argument_naming_the_field(self):
        # The cap in another currency than the budget's.
        terms = self.call_terms("Bad cap")
        terms.cap.CopyFrom(money_pb2.Money(amount_minor=CAP, currency="MDL"))
        req = pb.OpenCallRequest(request_id=request_id("call"), terms=terms)
        self.assert_fields(["terms.cap.currency"], self.admin.OpenCall, req)
        # A refused command wrote nothing: the same request id with the terms put right opens it.
        req.terms.cap.currency = "EUR"
        opened = self.admin.OpenCall(req)
        self.seen(opened.position)
        self.assertEqual(self.get_call(opened.call_id).terms.cap, eur(CAP))
        # A plan item of quantity zero, named by its place in the list.
        plan = pb.BusinessPlan(
            sector="A", summary="Greenhouse vegetables.", requested_amount=eur(100_000),
            items=[pb.PlanItem(description="Greenhouse", quantity=1, unit_price=eur(90_000)),
                   pb.PlanItem(description="Drip irrigation", quantity=0, unit_price=eur(10_000))])
        self.assert_fields(["plan.items[1].quantity"], self.caseworker.SubmitBusinessPlan,
                           pb.SubmitBusinessPlanRequest(request_id=request_id("plan"), application_id=uuid7(),
                                                        plan=plan))
        # Well-formed but unknown: NOT_FOUND.
        self.assert_code(grpc.StatusCode.NOT_FOUND, self.caseworker.GetCall,
                         pb.GetCallRequest(call_id=uuid7(), min_position=self.position))

    def test_03_a_viewer_reads_the_funnel_but_records_nothing(self):
        call_id = self.open_call("Viewer's call")
        person, registry_position = self.register_person(
            "Ana", "Lungu", regpb.SEX_FEMALE, 28, regpb.CATEGORY_WOMAN_ENTREPRENEUR)
        self.assert_code(grpc.StatusCode.PERMISSION_DENIED, self.viewer.OpenCall,
                         pb.OpenCallRequest(request_id=request_id("call"), terms=self.call_terms("Viewer opens")))
        self.assert_code(grpc.StatusCode.PERMISSION_DENIED, self.viewer.Apply, pb.ApplyRequest(
            request_id=request_id("apply"), call_id=call_id, person_id=person,
            min_registry_position=registry_position))
        self.assertEqual(self.funnel(self.viewer, call_id), (0, 0, 0, 0, 0, 0, 0), "nothing was recorded")
        applied = self.caseworker.Apply(pb.ApplyRequest(
            request_id=request_id("apply"), call_id=call_id, person_id=person,
            min_registry_position=registry_position))
        self.seen(applied.position)
        self.assertTrue(applied.eligible, applied.failed_rule)
        self.assertEqual(self.funnel(self.viewer, call_id), (1, 1, 0, 0, 0, 0, 0))
        progress = self.progress()
        self.assertEqual(progress[pb.INDICATOR_GRANTS_AWARDED][0], TARGET_GRANTS)
        # The application itself is personal: not for a viewer.
        self.assert_code(grpc.StatusCode.PERMISSION_DENIED, self.viewer.GetApplication, pb.GetApplicationRequest(
            application_id=applied.application_id, min_position=self.position))

    def test_04_a_man_applying_to_a_call_for_women_is_recorded_ineligible(self):
        call_id = self.open_call("Women only", sexes=[regpb.SEX_FEMALE])
        person, registry_position = self.register_person(
            "Vasile", "Rotaru", regpb.SEX_MALE, 27, regpb.CATEGORY_YOUTH_ENTREPRENEUR)
        applied = self.caseworker.Apply(pb.ApplyRequest(
            request_id=request_id("apply"), call_id=call_id, person_id=person,
            min_registry_position=registry_position))
        self.seen(applied.position)
        self.assertEqual((applied.eligible, applied.failed_rule), (False, "SEX"))
        application = self.get_application(applied.application_id)
        self.assertEqual((application.status, application.failed_rule), (pb.APPLICATION_STATUS_INELIGIBLE, "SEX"))
        # Acting on it further is refused with the rule that failed.
        course = self.caseworker.CreateCourse(pb.CreateCourseRequest(
            request_id=request_id("course"), audience=pb.AUDIENCE_ENTREPRENEURS,
            details=pb.CourseDetails(title=f"Business basics {RUN}", language="ro", hours=8)))
        self.seen(course.position)
        session = self.caseworker.ScheduleSession(pb.ScheduleSessionRequest(
            request_id=request_id("session"), course_id=course.course_id, code=f"BB-{RUN.upper()}", capacity=5,
            details=pb.SessionDetails(days=[pbdate(today())], venue="Primăria Anenii Noi", district=DISTRICT,
                                      trainer="Elena Rusu, ODA")))
        self.seen(session.position)
        self.assert_rule("SEX", self.caseworker.EnrolInSession, pb.EnrolInSessionRequest(
            request_id=request_id("enrol"), session_id=session.session_id, application_id=applied.application_id))
        # The funnel counts him as applied, not eligible.
        self.assertEqual(self.funnel(self.viewer, call_id), (1, 0, 0, 0, 0, 0, 0))


if __name__ == "__main__":
    main(GrantsE2E, __doc__)
