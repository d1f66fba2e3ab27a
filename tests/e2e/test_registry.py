"""End-to-end test of the registry service over gRPC, as an integrating system would call it.

Run by scripts/e2e.sh, which generates the Python stubs from proto/ (PYTHONPATH), starts
nats-server, Postgres, `acasa serve registry` and `acasa project registry`, and sets:

  E2E_GRPC_ADDR   the registry's gRPC address, e.g. 127.0.0.1:50051
  E2E_ACASA_BIN   the acasa binary, used to mint tokens (`acasa token`); the ACASA_* variables
                  (ACASA_JWT_SECRET_FILE, ...) are inherited from the script

Plain unittest; tests run in name order and each registers the people it needs, so they are
independent of each other. Every call has a deadline. Ends with "e2e: N passed, M failed" and
exits non-zero on any failure. Option: -k PATTERN (repeatable, like unittest's).
"""

import os
import unittest
import uuid
from datetime import date, timedelta

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from acasa.registry.v1 import registry_pb2 as pb
from acasa.registry.v1 import registry_pb2_grpc as pb_grpc
from acasa.type.v1 import date_pb2
from e2e_common import RUN, Client, main, mint_token, random_digits, request_id, uuid7, with_check_digit

ADDR = os.environ.get("E2E_GRPC_ADDR", "127.0.0.1:50051")
FAMILY_PREFIX = "Zx" + RUN.capitalize()  # e.g. "ZxQwertyui"


def valid_idnp():
    """A valid IDNP: 12 random digits and the 7-3-1 check digit."""
    return with_check_digit(random_digits(12))


def bad_check_digit_idnp():
    idnp = valid_idnp()
    return idnp[:12] + str((int(idnp[12]) + 1) % 10)


def person_details(family_name, given_name="Ana", idnp=None, district="Ungheni", **overrides):
    details = pb.PersonDetails(
        given_name=given_name,
        family_name=family_name,
        birth_date=date_pb2.Date(year=1990, month=5, day=17),
        sex=pb.SEX_FEMALE,
        idnp=valid_idnp() if idnp is None else idnp,
        home_district=district,
        home_locality="Sculeni",
        languages=["ro", "en"],
        education=[pb.Education(level=pb.EDUCATION_LEVEL_MASTER, field="Computer science",
                                institution="Politecnico di Milano", country="IT", year=2015)],
        profession="Software engineer",
        scientific_field="",
        skills=["rust", "sql"],
    )
    for key, value in overrides.items():
        if isinstance(value, list):
            field = getattr(details, key)
            del field[:]
            field.extend(value)
        else:
            setattr(details, key, value)
    return details


def register_request(family_name, country="IT", categories=None, **detail_overrides):
    return pb.RegisterPersonRequest(
        request_id=request_id("reg"),
        details=person_details(family_name, **detail_overrides),
        contacts=pb.Contacts(email=f"{RUN}.{family_name.lower()}@example.org", phone="+37369123456"),
        country_of_residence=country,
        categories=categories if categories is not None
        else [pb.CATEGORY_MIGRANT_ABROAD, pb.CATEGORY_OVERSEAS_GRADUATE],
        interests=[pb.INTEREST_PLACEMENT],
    )


class RegistryE2E(unittest.TestCase):
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        cls.channel = grpc.insecure_channel(ADDR)
        grpc.channel_ready_future(cls.channel).result(timeout=30)
        stub = pb_grpc.RegistryServiceStub(cls.channel)
        cls.caseworker = Client(stub, mint_token("caseworker", "e2e-caseworker"))
        cls.viewer = Client(stub, mint_token("viewer", "e2e-viewer"))
        cls.admin = Client(stub, mint_token("admin", "e2e-admin"))
        cls.anonymous = Client(stub, None)

    @classmethod
    def tearDownClass(cls):
        cls.channel.close()

    # ------------------------------------------------------------------ helpers

    def register(self, req, client=None):
        return (client or self.caseworker).RegisterPerson(req)

    def get(self, person_id, min_position):
        return self.viewer.GetPerson(pb.GetPersonRequest(person_id=person_id, min_position=min_position))

    def search_all(self, client=None, max_pages=50, **filters):
        """Follows next_page_token to the end; returns (summaries, pages)."""
        client = client or self.viewer
        people, token, pages = [], "", 0
        while True:
            resp = client.SearchPeople(pb.SearchPeopleRequest(page_token=token, **filters))
            pages += 1
            people.extend(resp.people)
            token = resp.next_page_token
            if not token:
                return people, pages
            self.assertLess(pages, max_pages, "paging does not end")

    def assert_code(self, code, fn, *args):
        with self.assertRaises(grpc.RpcError) as ctx:
            fn(*args)
        err = ctx.exception
        self.assertEqual(err.code(), code, f"expected {code.name}, got {err.code().name}: {err.details()}")
        return err

    def assert_bad_field(self, req, field):
        """RegisterPerson(req) fails INVALID_ARGUMENT with a BadRequest naming exactly `field`."""
        err = self.assert_code(grpc.StatusCode.INVALID_ARGUMENT, self.caseworker.RegisterPerson, req)
        status = rpc_status.from_call(err)
        self.assertIsNotNone(status, f"no grpc-status-details-bin on the error: {err.details()}")
        violations = []
        for detail in status.details:
            if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad = error_details_pb2.BadRequest()
                detail.Unpack(bad)
                violations.extend(bad.field_violations)
        fields = [v.field for v in violations]
        self.assertIn(field, fields, f"violations: {[(v.field, v.description) for v in violations]}")
        self.assertEqual(set(fields), {field},
                         f"only {field} is wrong; violations: {[(v.field, v.description) for v in violations]}")
        for v in violations:
            self.assertTrue(v.description, f"violation of {v.field} has no description")

    # ------------------------------------------------------------------ 1. read your writes

    def test_01_register_then_get_reads_own_write(self):
        req = register_request(FAMILY_PREFIX + "Ryw")
        resp = self.register(req)
        self.assertEqual(uuid.UUID(resp.person_id).version, 7, resp.person_id)
        self.assertGreater(resp.position, 0)
        got = self.get(resp.person_id, resp.position)  # no sleep: min_position waits
        self.assertGreaterEqual(got.position, resp.position)
        p = got.person
        self.assertEqual(p.person_id, resp.person_id)
        self.assertEqual(p.status, pb.PERSON_STATUS_ACTIVE)
        self.assertEqual(p.details, req.details)
        self.assertEqual(p.contacts, req.contacts)
        self.assertEqual(p.country_of_residence, "IT")
        self.assertEqual(sorted(p.categories), sorted(req.categories))
        self.assertEqual(list(p.interests), [pb.INTEREST_PLACEMENT])
        self.assertFalse(p.returned)
        self.assertTrue(p.HasField("registered_at"))

    # ------------------------------------------------------------------ 2. idempotency

    def test_02_retry_same_request_returns_same_answer(self):
        req = register_request(FAMILY_PREFIX + "Retry")
        first = self.register(req)
        again = self.register(req)
        self.assertEqual((again.person_id, again.position), (first.person_id, first.position))

    def test_03_same_request_id_other_body_is_failed_precondition(self):
        req = register_request(FAMILY_PREFIX + "Reuse")
        self.register(req)
        other = pb.RegisterPersonRequest()
        other.CopyFrom(req)
        other.details.given_name = "Someone Else"
        other.details.idnp = valid_idnp()
        self.assert_code(grpc.StatusCode.FAILED_PRECONDITION, self.caseworker.RegisterPerson, other)

    # ------------------------------------------------------------------ 3. uniqueness of IDNP

    def test_04_second_person_same_idnp_is_already_exists(self):
        idnp = valid_idnp()
        first = self.register(register_request(FAMILY_PREFIX + "Idnp", idnp=idnp))
        second = register_request(FAMILY_PREFIX + "IdnpOther", given_name="Ion", idnp=idnp)
        err = self.assert_code(grpc.StatusCode.ALREADY_EXISTS, self.caseworker.RegisterPerson, second)
        self.assertIn(first.person_id, err.details())

    # ------------------------------------------------------------------ 4. search and paging

    def test_05_search_by_name_substring(self):
        family = FAMILY_PREFIX + "Searchname"
        resp = self.register(register_request(family))
        # Case-insensitive substring of the family name.
        people, _ = self.search_all(name=family[2:12].lower(), min_position=resp.position)
        self.assertEqual([s.person_id for s in people].count(resp.person_id), 1)
        found = next(s for s in people if s.person_id == resp.person_id)
        self.assertEqual((found.given_name, found.family_name), ("Ana", family))
        self.assertEqual(found.status, pb.PERSON_STATUS_ACTIVE)

    def test_06_search_by_category_and_country(self):
        resp = self.register(register_request(FAMILY_PREFIX + "Searchcat", country="CA",
                                              categories=[pb.CATEGORY_DIASPORA_SCIENTIST]))
        people, _ = self.search_all(categories=[pb.CATEGORY_DIASPORA_SCIENTIST], country="CA",
                                    page_size=200, min_position=resp.position)
        self.assertEqual([s.person_id for s in people].count(resp.person_id), 1)
        for s in people:
            self.assertEqual(s.country_of_residence, "CA")
            self.assertIn(pb.CATEGORY_DIASPORA_SCIENTIST, s.categories)
        # Another category in that country does not find them.
        others, _ = self.search_all(categories=[pb.CATEGORY_RETURNEE], country="CA",
                                    page_size=200, min_position=resp.position)
        self.assertNotIn(resp.person_id, [s.person_id for s in others])

    def test_07_paging_finds_everyone_exactly_once(self):
        district = f"District{RUN}"
        ids, position = {}, 0
        for suffix in ("Pagee", "Pagec", "Pagea", "Paged", "Pageb"):
            family = FAMILY_PREFIX + suffix
            resp = self.register(register_request(family, country="PT", district=district))
            ids[resp.person_id] = family
            position = max(position, resp.position)
        # By country and district (exact, case-insensitive).
        people, pages = self.search_all(country="PT", district=district.upper(), page_size=2,
                                        min_position=position)
        got = [s.person_id for s in people]
        self.assertEqual(sorted(got), sorted(ids), "each person exactly once")
        self.assertEqual(pages, 3)
        self.assertEqual(got, list(ids), "in registration order (person ids are UUIDv7)")
        # By name prefix, the same five.
        people, pages = self.search_all(name=FAMILY_PREFIX + "Page", page_size=2, min_position=position)
        self.assertEqual(sorted(s.person_id for s in people), sorted(ids))
        self.assertEqual(pages, 3)

    # ------------------------------------------------------------------ 5. documented errors

    def test_10_unknown_person_is_not_found(self):
        self.assert_code(grpc.StatusCode.NOT_FOUND, self.viewer.GetPerson,
                         pb.GetPersonRequest(person_id=uuid7()))

    def test_11_missing_token_is_unauthenticated(self):
        self.assert_code(grpc.StatusCode.UNAUTHENTICATED, self.anonymous.GetPerson,
                         pb.GetPersonRequest(person_id=uuid7()))
        self.assert_code(grpc.StatusCode.UNAUTHENTICATED, self.anonymous.RegisterPerson,
                         register_request(FAMILY_PREFIX + "Anon"))

    def test_12_viewer_cannot_register(self):
        self.assert_code(grpc.StatusCode.PERMISSION_DENIED, self.viewer.RegisterPerson,
                         register_request(FAMILY_PREFIX + "Viewer"))

    def test_13_caseworker_cannot_erase(self):
        resp = self.register(register_request(FAMILY_PREFIX + "Noerase"))
        self.assert_code(grpc.StatusCode.PERMISSION_DENIED, self.caseworker.ErasePerson,
                         pb.ErasePersonRequest(request_id=request_id("erase"), person_id=resp.person_id))

    def test_14_bad_idnp_check_digit(self):
        self.assert_bad_field(register_request(FAMILY_PREFIX + "Bad", idnp=bad_check_digit_idnp()),
                              "details.idnp")

    def test_15_bad_email(self):
        req = register_request(FAMILY_PREFIX + "Bad")
        req.contacts.email = "not-an-email"
        self.assert_bad_field(req, "contacts.email")

    def test_16_birth_date_in_future(self):
        future = date.today() + timedelta(days=30)
        req = register_request(FAMILY_PREFIX + "Bad")
        req.details.birth_date.CopyFrom(date_pb2.Date(year=future.year, month=future.month, day=future.day))
        # Its education year must stay plausible for a person born then: none.
        del req.details.education[:]
        self.assert_bad_field(req, "details.birth_date")

    def test_17_unknown_country(self):
        self.assert_bad_field(register_request(FAMILY_PREFIX + "Bad", country="XX"), "country_of_residence")

    def test_18_bad_language_tag(self):
        self.assert_bad_field(register_request(FAMILY_PREFIX + "Bad", languages=["english"]),
                              "details.languages[0]")

    def test_19_no_categories(self):
        self.assert_bad_field(register_request(FAMILY_PREFIX + "Bad", categories=[]), "categories")

    def test_20_missing_request_id(self):
        req = register_request(FAMILY_PREFIX + "Bad")
        req.request_id = ""
        self.assert_bad_field(req, "request_id")

    # ------------------------------------------------------------------ 6. erasure

    def test_30_erasure_drops_personal_data(self):
        family = FAMILY_PREFIX + "Erased"
        req = register_request(family, country="DE", categories=[pb.CATEGORY_RETURNEE, pb.CATEGORY_YOUTH_ENTREPRENEUR])
        reg = self.register(req)
        erased = self.admin.ErasePerson(pb.ErasePersonRequest(request_id=request_id("erase"),
                                                              person_id=reg.person_id))
        self.assertGreater(erased.position, reg.position)
        p = self.get(reg.person_id, erased.position).person
        self.assertEqual(p.status, pb.PERSON_STATUS_ERASED)
        self.assertEqual(p.details.given_name, "")
        self.assertEqual(p.details.family_name, "")
        self.assertEqual(p.details.idnp, "")
        self.assertEqual(p.contacts.email, "")
        self.assertEqual(p.contacts.phone, "")
        self.assertFalse(p.HasField("details") and p.details.ByteSize() > 0, f"details left: {p.details}")
        self.assertFalse(p.HasField("contacts") and p.contacts.ByteSize() > 0, f"contacts left: {p.contacts}")
        self.assertEqual(sorted(p.categories), sorted(req.categories))
        self.assertEqual(p.country_of_residence, "DE")
        # Its name no longer finds it, even with inactive records included.
        for include_inactive in (False, True):
            people, _ = self.search_all(name=family, include_inactive=include_inactive,
                                        min_position=erased.position)
            self.assertNotIn(reg.person_id, [s.person_id for s in people])
        # It still counts: found by category and country among inactive records, without names.
        people, _ = self.search_all(categories=[pb.CATEGORY_YOUTH_ENTREPRENEUR], country="DE",
                                    include_inactive=True, page_size=200, min_position=erased.position)
        found = [s for s in people if s.person_id == reg.person_id]
        self.assertEqual(len(found), 1)
        self.assertEqual((found[0].given_name, found[0].family_name, found[0].home_district), ("", "", ""))
        self.assertEqual(found[0].status, pb.PERSON_STATUS_ERASED)

    # ------------------------------------------------------------------ 7. consent

    def test_40_consent_given_then_withdrawn_with_history(self):
        reg = self.register(register_request(FAMILY_PREFIX + "Consent"))
        purpose = pb.CONSENT_PURPOSE_PROGRAMME_PARTICIPATION
        given = self.caseworker.GiveConsent(pb.GiveConsentRequest(
            request_id=request_id("consent"), person_id=reg.person_id, purpose=purpose,
            channel=pb.CONSENT_CHANNEL_ONLINE))
        p = self.get(reg.person_id, given.position).person
        current = [c for c in p.consents if c.purpose == purpose]
        self.assertEqual(len(current), 1, f"consents: {p.consents}")
        self.assertTrue(current[0].given)
        self.assertEqual(current[0].channel, pb.CONSENT_CHANNEL_ONLINE)

        withdrawn = self.caseworker.WithdrawConsent(pb.WithdrawConsentRequest(
            request_id=request_id("withdraw"), person_id=reg.person_id, purpose=purpose,
            channel=pb.CONSENT_CHANNEL_EMAIL))
        self.assertGreater(withdrawn.position, given.position)
        p = self.get(reg.person_id, withdrawn.position).person
        current = [c for c in p.consents if c.purpose == purpose]
        self.assertTrue(all(not c.given for c in current), f"consents: {p.consents}")
        history = [h for h in p.consent_history if h.purpose == purpose]
        self.assertEqual([(h.given, h.channel) for h in history],
                         [(True, pb.CONSENT_CHANNEL_ONLINE), (False, pb.CONSENT_CHANNEL_EMAIL)],
                         f"history: {p.consent_history}")
        self.assertEqual([h.recorded_by for h in history], ["e2e-caseworker"] * 2)
        self.assertLessEqual(history[0].at.ToNanoseconds(), history[1].at.ToNanoseconds())


if __name__ == "__main__":
    main(RegistryE2E, __doc__)
