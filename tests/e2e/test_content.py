"""End-to-end test of the content service over gRPC: an article on legal assistance for
Moldovans in Italy, from the editor's draft to readers who never log in, and the agreements
catalogue.

An editor creates an article (topic legal assistance, for Italy, a slug unique per run) and
writes its Romanian version — a body with a `<script>` line and a markdown link — and submits
it. Publishing it before it is approved is refused (NOT_APPROVED); the editor approving their
own revision, with a token that also has the reviewer role, is refused too (OWN_REVISION); a
reviewer approves revision 1 and the editor publishes it. A public client with no token at all
(a channel without any authorization metadata) reads the article by its slug in Ukrainian and
gets the Romanian version by fallback (uk → ro → en), its body rendered safely: the `<script>`
escaped, the link a link. A Russian translation of revision 1 is reviewed and published: a
reader of ru-MD gets it (ru-MD → ru). The Romanian source is then edited (revision 2): the
editors see the Russian version stale against source revision 2, with the body's change in
the source diff, and readers keep getting the published revision 1 meanwhile, the Russian one
marked outdated. Search without a token finds the article in Romanian and in Russian (each
language with its own text-search configuration), and the list for Italy in Ukrainian has it.
An agreement on social security with Italy is catalogued as signed on a past date, then
ratified and in force; a Romanian summary is written; a public reader of Ukrainian gets the
Romanian summary, the status history and the document link. Retried commands (the same
request_id) answer what they answered first; a request_id reused for another body is refused.
Smaller tests: bad input is INVALID_ARGUMENT naming the field (a slug with a space, a locale
that is not BCP 47, public reads included), and the editorial side needs a token with the
right role while the public side needs none. The public rate limit is not exercised here: at
its default (20/s, a burst of 40, per client address) a test hammering it would throttle the
other tests' public reads from the same address.

Run by scripts/e2e.sh, which generates the Python stubs from proto/ (PYTHONPATH), starts
nats-server, Postgres and every service with its worker (the content worker runs the
projection content.content and the deadline worker), and sets:

  E2E_CONTENT_ADDR   the content service's gRPC address (default 127.0.0.1:50055): both
                     ContentService (editorial, bearer token) and PublicContentService (no
                     login) are served there
  E2E_ACASA_BIN      the acasa binary, for `acasa token`; the ACASA_* variables are inherited
                     from the script (the fallback chains and the public rate at their defaults)

Plain unittest; each test creates its own articles and agreements (slugs and titles unique per
run), so tests are independent of each other and of data already there. Editorial reads wait
for the writes' positions (min_position); public reads are eventually consistent and are
polled with a deadline, never after a fixed sleep. Ends with "e2e: N passed, M failed" and
exits non-zero on any failure. Option: -k PATTERN (repeatable, like unittest's).
"""

import os
import subprocess
import unittest
from datetime import date

import grpc

from acasa.content.v1 import content_pb2 as pb
from acasa.content.v1 import content_pb2_grpc as pb_grpc
from acasa.type.v1 import date_pb2
from e2e_common import ACASA_BIN, RUN, Client, bad_fields, main, mint_token, poll, precondition_rules, request_id

CONTENT_ADDR = os.environ.get("E2E_CONTENT_ADDR", "127.0.0.1:50055")

PUBLIC_WAIT = 20.0  # seconds until a published change reaches the public reads
PUBLIC_POLL = 0.2  # between public reads while waiting: 5/s, well under the per-client rate

RO_TITLE = f"Asistență juridică gratuită în Italia {RUN}"
RO_SUMMARY = "Cine are dreptul la un avocat plătit de stat în Italia și unde se depune cererea."
RO_BODY_1 = (
    "# Cine are dreptul\n"
    "\n"
    "În Italia, cetățenii Republicii Moldova cu venituri mici pot primi asistență juridică gratuită "
    "(patrocinio a spese dello Stato), în procese civile și penale.\n"
    "<script>alert('xss')</script>\n"
    "\n"
    "Vedeți [ghidul consulatului](https://www.mfa.gov.md/ro/asistenta-juridica-italia) pentru adrese.\n"
)
RO_ADDED = "Cererea se depune la baroul (ordine degli avvocati) din orașul în care locuiți."
RO_BODY_2 = RO_BODY_1 + "\n" + RO_ADDED + "\n"
LINK_HTML = ('<a href="https://www.mfa.gov.md/ro/asistenta-juridica-italia" '
             'rel="nofollow noopener noreferrer">ghidul consulatului</a>')
RU_TITLE = f"Бесплатная юридическая помощь в Италии {RUN}"
RU_SUMMARY = "Кто имеет право на адвоката за счёт государства в Италии."
RU_BODY = ("В Италии граждане Республики Молдова с низкими доходами могут получить бесплатную "
           "юридическую помощь (patrocinio a spese dello Stato).\n")

AGREEMENT_SIGNED = date(2021, 5, 18)
AGREEMENT_RATIFIED = date(2022, 2, 10)
AGREEMENT_IN_FORCE = date(2022, 6, 1)
AGREEMENT_LINK = "https://www.legis.md/acord-securitate-sociala-italia"
AGREEMENT_SUMMARY = ("Perioadele de muncă din Italia și din Republica Moldova se însumează pentru "
                     "dreptul la pensie; pensiile se plătesc în țara de reședință.")


def pbdate(d):
    return date_pb2.Date(year=d.year, month=d.month, day=d.day)


def pydate(d):
    return date(d.year, d.month, d.day)


def mint_roles_token(roles, subject):
    """A bearer token from `acasa token` with several roles (repeated --role) for one subject."""
    cmd = [ACASA_BIN, "token", "--subject", subject, "--ttl-seconds", "3600"]
    for role in roles:
        cmd += ["--role", role]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=30)
    token = out.stdout.strip().splitlines()[-1].strip()
    return token[7:] if token.lower().startswith("bearer ") else token


class ContentE2E(unittest.TestCase):
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        cls.channel = grpc.insecure_channel(CONTENT_ADDR)
        # The public reader's own channel: no token, no authorization metadata of any kind.
        cls.public_channel = grpc.insecure_channel(CONTENT_ADDR)
        for channel in (cls.channel, cls.public_channel):
            grpc.channel_ready_future(channel).result(timeout=30)
        stub = pb_grpc.ContentServiceStub(cls.channel)
        cls.stub = stub
        cls.editor_subject = f"e2e-content-editor-{RUN}"
        cls.reviewer_subject = f"e2e-content-reviewer-{RUN}"
        cls.editor = Client(stub, mint_token("editor", cls.editor_subject))
        # The same person with the reviewer role as well: still never approves their own revision.
        cls.editor_reviewer = Client(stub, mint_roles_token(["editor", "reviewer"], cls.editor_subject))
        cls.reviewer = Client(stub, mint_token("reviewer", cls.reviewer_subject))
        cls.viewer = Client(stub, mint_token("viewer", f"e2e-content-viewer-{RUN}"))
        cls.anonymous_editorial = Client(stub, None)
        cls.public = Client(pb_grpc.PublicContentServiceStub(cls.public_channel), None)
        assert cls.public.metadata == ()

    @classmethod
    def tearDownClass(cls):
        cls.channel.close()
        cls.public_channel.close()

    def setUp(self):
        self.position = 0  # the highest stream position this test's commands answered

    # ------------------------------------------------------------------ helpers

    def seen(self, position):
        self.position = max(self.position, position)
        return position

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

    def create_article(self, slug, countries=("IT",)):
        created = self.editor.CreateArticle(pb.CreateArticleRequest(
            request_id=request_id("article"), topic=pb.TOPIC_LEGAL_ASSISTANCE, countries=list(countries), slug=slug))
        self.seen(created.position)
        return created.article_id

    def edit(self, article_id, locale, title, summary, body, translates=0):
        edited = self.editor.EditArticle(pb.EditArticleRequest(
            request_id=request_id("edit"), article_id=article_id, locale=locale, title=title, summary=summary,
            body=body, translates=translates))
        self.seen(edited.position)
        return edited.revision

    def submit(self, article_id, locale):
        self.seen(self.editor.SubmitArticle(pb.SubmitArticleRequest(
            request_id=request_id("submit"), article_id=article_id, locale=locale)).position)

    def approve(self, client, article_id, locale, revision):
        return client.ApproveArticle(pb.ApproveArticleRequest(
            request_id=request_id("approve"), article_id=article_id, locale=locale, revision=revision))

    def publish_request(self, article_id, locale):
        return pb.PublishArticleRequest(request_id=request_id("publish"), article_id=article_id, locale=locale)

    def draft(self, article_id):
        return self.viewer.GetArticleDraft(pb.GetArticleDraftRequest(
            article_id=article_id, min_position=self.position)).article

    def versions(self, article_id):
        return {v.locale: v for v in self.draft(article_id).versions}

    def read(self, slug, locale, until, what):
        """Polls the public GetArticle (no token) until `until(article)` holds; the article."""
        def attempt():
            article = self.public.GetArticle(pb.GetArticleRequest(slug=slug, locale=locale)).article
            return article if until(article) else None
        return poll(what, attempt, PUBLIC_WAIT, PUBLIC_POLL)

    def listed(self, request, article_id):
        """Pages through the public ListArticles; the listing of `article_id`, or None."""
        for _ in range(50):
            page = self.public.ListArticles(request)
            for listing in page.articles:
                if listing.article_id == article_id:
                    return listing
            if not page.next_page_token:
                return None
            request.page_token = page.next_page_token
        self.fail("ListArticles kept answering pages")

    def searched(self, query, locale, article_id):
        """The public SearchArticles (no token) once it finds `article_id`: (listing, configurations)."""
        def attempt():
            found = self.public.SearchArticles(pb.SearchArticlesRequest(query=query, locale=locale))
            hits = [a for a in found.articles if a.article_id == article_id]
            return (hits[0], list(found.configurations)) if hits else None
        return poll(f"search {query!r} in {locale} to find {article_id}", attempt, PUBLIC_WAIT, PUBLIC_POLL)

    # ------------------------------------------------------------------ 1. an article, to readers

    def test_01_an_article_from_the_editor_to_readers_without_login(self):
        slug = f"asistenta-juridica-italia-{RUN}"

        # The editor creates the article; a retry answers the same article, and the slug is
        # then taken (naming the article holding it). A request id reused for another body is
        # refused.
        create = pb.CreateArticleRequest(request_id=request_id("article"), topic=pb.TOPIC_LEGAL_ASSISTANCE,
                                         countries=["IT"], slug=slug)
        created = self.editor.CreateArticle(create)
        self.seen(created.position)
        again = self.editor.CreateArticle(create)
        self.assertEqual((again.article_id, again.position), (created.article_id, created.position),
                         "a retry, same answer")
        article_id = created.article_id
        err = self.assert_code(grpc.StatusCode.ALREADY_EXISTS, self.editor.CreateArticle, pb.CreateArticleRequest(
            request_id=request_id("article"), topic=pb.TOPIC_LEGAL_ASSISTANCE, countries=["IT"], slug=slug))
        self.assertIn(article_id, err.details())
        reused = pb.CreateArticleRequest()
        reused.CopyFrom(create)
        reused.slug = f"{slug}-alt"
        self.assert_code(grpc.StatusCode.FAILED_PRECONDITION, self.editor.CreateArticle, reused)

        # The Romanian version, the source: revision 1 (a retry answers the same revision).
        edit = pb.EditArticleRequest(request_id=request_id("edit"), article_id=article_id, locale="ro",
                                     title=RO_TITLE, summary=RO_SUMMARY, body=RO_BODY_1)
        edited = self.editor.EditArticle(edit)
        self.seen(edited.position)
        self.assertEqual(edited.revision, 1)
        again = self.editor.EditArticle(edit)
        self.assertEqual((again.revision, again.position), (1, edited.position), "a retry, same answer")
        self.submit(article_id, "ro")

        # Not published before someone other than the author approves; the author approving
        # their own revision is refused even with the reviewer role.
        self.assert_rule("NOT_APPROVED", self.editor.PublishArticle, self.publish_request(article_id, "ro"))
        self.assert_rule("OWN_REVISION", self.editor_reviewer.ApproveArticle, pb.ApproveArticleRequest(
            request_id=request_id("approve"), article_id=article_id, locale="ro", revision=1))
        self.seen(self.approve(self.reviewer, article_id, "ro", 1).position)
        published = self.editor.PublishArticle(self.publish_request(article_id, "ro"))
        self.seen(published.position)

        # The editors' view, once it has the publication.
        article = self.viewer.GetArticleDraft(pb.GetArticleDraftRequest(
            article_id=article_id, min_position=published.position)).article
        self.assertEqual((article.slug, article.topic, list(article.countries), article.source_locale,
                          article.created_by),
                         (slug, pb.TOPIC_LEGAL_ASSISTANCE, ["IT"], "ro", self.editor_subject))
        ro = {v.locale: v for v in article.versions}["ro"]
        self.assertEqual((ro.state, ro.source, ro.current_revision, ro.title, ro.author, ro.approved_revision,
                          ro.approved_by, ro.live_revision, ro.stale),
                         (pb.VERSION_STATE_PUBLISHED, True, 1, RO_TITLE, self.editor_subject, 1,
                          self.reviewer_subject, 1, False))

        # 2. A reader of Ukrainian, without any token: the Romanian version by fallback, the
        # script escaped, the link a link.
        uk = self.read(slug, "uk", lambda a: a.article_id == article_id, f"article {slug} for a reader of uk")
        self.assertEqual((uk.served.requested_locale, uk.served.served_locale, uk.served.fallback),
                         ("uk", "ro", True))
        self.assertEqual(list(uk.served.chain), ["uk", "ro", "en"])
        self.assertEqual((uk.slug, uk.topic, list(uk.countries), uk.title, uk.summary, uk.revision, uk.outdated,
                          list(uk.available_locales)),
                         (slug, pb.TOPIC_LEGAL_ASSISTANCE, ["IT"], RO_TITLE, RO_SUMMARY, 1, False, ["ro"]))
        self.assertNotIn("<script", uk.body_html.lower())
        self.assertIn("&lt;script&gt;", uk.body_html)
        self.assertIn(LINK_HTML, uk.body_html)
        self.assertIn("<h2>Cine are dreptul</h2>", uk.body_html)
        self.assertIn("ghidul consulatului (https://www.mfa.gov.md/ro/asistenta-juridica-italia)", uk.body_text)
        self.assertTrue(uk.HasField("published_at"))
        # Unknown slugs are NOT_FOUND for readers too.
        self.assert_code(grpc.StatusCode.NOT_FOUND, self.public.GetArticle,
                         pb.GetArticleRequest(slug=f"nu-exista-{RUN}", locale="ro"))

        # 3. The Russian translation of revision 1, reviewed and published: a reader of ru-MD
        # gets Russian.
        self.assertEqual(self.edit(article_id, "ru", RU_TITLE, RU_SUMMARY, RU_BODY, translates=1), 1)
        self.submit(article_id, "ru")
        self.seen(self.approve(self.reviewer, article_id, "ru", 1).position)
        self.seen(self.editor.PublishArticle(self.publish_request(article_id, "ru")).position)
        ru = self.read(slug, "ru-MD", lambda a: a.served.served_locale == "ru",
                       f"article {slug} served in ru to a reader of ru-MD")
        self.assertEqual((ru.served.requested_locale, ru.served.fallback, list(ru.served.chain)),
                         ("ru-MD", True, ["ru-MD", "ru", "ro", "en"]))
        self.assertEqual((ru.article_id, ru.title, ru.revision, ru.outdated, list(ru.available_locales)),
                         (article_id, RU_TITLE, 1, False, ["ro", "ru"]))
        versions = self.versions(article_id)
        self.assertEqual((versions["ru"].source, versions["ru"].in_line_with, versions["ru"].stale,
                          versions["ru"].live_revision),
                         (False, 1, False, 1))

        # The source moves on: revision 2 of the Romanian version (a draft).
        self.assertEqual(self.edit(article_id, "ro", RO_TITLE, RO_SUMMARY, RO_BODY_2), 2)
        versions = self.versions(article_id)
        self.assertEqual((versions["ro"].state, versions["ro"].current_revision, versions["ro"].live_revision),
                         (pb.VERSION_STATE_DRAFT, 2, 1))
        self.assertEqual((versions["ru"].state, versions["ru"].in_line_with, versions["ru"].stale,
                          versions["ru"].source_revision),
                         (pb.VERSION_STATE_PUBLISHED, 1, True, 2))
        diff = self.viewer.GetArticleSourceDiff(pb.GetArticleSourceDiffRequest(
            article_id=article_id, locale="ru", min_position=self.position))
        self.assertEqual((diff.source_locale, diff.from_revision, diff.to_revision), ("ro", 1, 2))
        changes = {c.field: c for c in diff.changes}
        self.assertEqual(set(changes), {"body"}, diff)
        self.assertGreaterEqual(changes["body"].inserted, 1)
        self.assertEqual(changes["body"].deleted, 0)
        self.assertIn("+" + RO_ADDED, changes["body"].unified.splitlines())
        # Drafts listed as stale in Russian.
        stale = self.viewer.ListArticleDrafts(pb.ListArticleDraftsRequest(
            locale="ru", stale_only=True, country="IT", min_position=self.position, page_size=200))
        self.assertIn(article_id, [a.article_id for a in stale.articles])

        # Readers keep the published revision 1 while revision 2 is drafted; the Russian one
        # is marked outdated.
        ru = self.read(slug, "ru-MD", lambda a: a.served.served_locale == "ru" and a.outdated,
                       f"the Russian version of {slug} marked outdated")
        self.assertEqual(ru.revision, 1)
        uk = self.read(slug, "uk", lambda a: a.article_id == article_id, f"article {slug} for a reader of uk")
        self.assertEqual((uk.served.served_locale, uk.revision, uk.outdated), ("ro", 1, False))
        self.assertNotIn(RO_ADDED, uk.body_text)

        # 4. Search without a token: in Romanian (romanian configuration), in Russian (russian).
        hit, configurations = self.searched(f"asistență juridică {RUN}", "ro", article_id)
        self.assertEqual((hit.slug, hit.served.served_locale, hit.served.fallback, hit.title),
                         (slug, "ro", False, RO_TITLE))
        self.assertIn("ro=romanian", configurations)
        hit, configurations = self.searched(f"юридическая помощь {RUN}", "ru", article_id)
        self.assertEqual((hit.served.served_locale, hit.title), ("ru", RU_TITLE))
        self.assertIn("ru=russian", configurations)

        # The list for Italy in Ukrainian has it (Romanian by fallback); the list for France
        # does not.
        listing = self.listed(pb.ListArticlesRequest(country="IT", locale="uk", page_size=50), article_id)
        self.assertIsNotNone(listing, "ListArticles(country=IT, locale=uk) lists the article")
        self.assertEqual((listing.slug, listing.served.requested_locale, listing.served.served_locale,
                          listing.served.fallback, listing.title, listing.topic),
                         (slug, "uk", "ro", True, RO_TITLE, pb.TOPIC_LEGAL_ASSISTANCE))
        self.assertIsNone(self.listed(pb.ListArticlesRequest(country="FR", locale="uk", page_size=50), article_id),
                          "an article for Italy is not listed for France")

    # ------------------------------------------------------------------ 5. an agreement

    def test_02_an_agreement_from_signature_to_in_force_read_in_ukrainian(self):
        title = f"Acordul între Republica Moldova și Republica Italiană privind securitatea socială {RUN}"
        create = pb.CreateAgreementRequest(
            request_id=request_id("agreement"), country="IT", kind=pb.AGREEMENT_KIND_SOCIAL_SECURITY, title=title,
            status=pb.AGREEMENT_STATUS_SIGNED, on=pbdate(AGREEMENT_SIGNED))
        created = self.editor.CreateAgreement(create)
        self.seen(created.position)
        again = self.editor.CreateAgreement(create)
        self.assertEqual((again.agreement_id, again.position), (created.agreement_id, created.position),
                         "a retry, same answer")
        agreement_id = created.agreement_id

        def change(status, on):
            return pb.ChangeAgreementStatusRequest(request_id=request_id("status"), agreement_id=agreement_id,
                                                   status=status, on=pbdate(on))

        self.seen(self.editor.ChangeAgreementStatus(change(pb.AGREEMENT_STATUS_RATIFIED, AGREEMENT_RATIFIED)).position)
        # Dates never go backwards; a signed agreement is never negotiated again.
        self.assert_rule("AGREEMENT_DATES", self.editor.ChangeAgreementStatus,
                         change(pb.AGREEMENT_STATUS_IN_FORCE, AGREEMENT_SIGNED))
        self.assert_rule("AGREEMENT_STATUS", self.editor.ChangeAgreementStatus,
                         change(pb.AGREEMENT_STATUS_NEGOTIATING, AGREEMENT_IN_FORCE))
        self.seen(self.editor.ChangeAgreementStatus(change(pb.AGREEMENT_STATUS_IN_FORCE, AGREEMENT_IN_FORCE)).position)
        summary = self.editor.EditAgreementSummary(pb.EditAgreementSummaryRequest(
            request_id=request_id("summary"), agreement_id=agreement_id, locale="ro", summary=AGREEMENT_SUMMARY))
        self.seen(summary.position)
        self.assertEqual(summary.revision, 1)
        self.seen(self.editor.AddAgreementLink(pb.AddAgreementLinkRequest(
            request_id=request_id("link"), agreement_id=agreement_id, url=AGREEMENT_LINK)).position)

        # The editors' view.
        draft = self.viewer.GetAgreementDraft(pb.GetAgreementDraftRequest(
            agreement_id=agreement_id, min_position=self.position)).agreement
        self.assertEqual((draft.agreement.title, draft.agreement.status, pydate(draft.agreement.status_since)),
                         (title, pb.AGREEMENT_STATUS_IN_FORCE, AGREEMENT_IN_FORCE))
        self.assertEqual([(s.locale, s.source, [r.revision for r in s.revisions]) for s in draft.summaries],
                         [("ro", True, [1])])

        # A reader of Ukrainian, without a token: the Romanian summary by fallback.
        expected_history = [(pb.AGREEMENT_STATUS_SIGNED, AGREEMENT_SIGNED),
                            (pb.AGREEMENT_STATUS_RATIFIED, AGREEMENT_RATIFIED),
                            (pb.AGREEMENT_STATUS_IN_FORCE, AGREEMENT_IN_FORCE)]

        def read():
            a = self.public.GetAgreement(pb.GetAgreementRequest(agreement_id=agreement_id, locale="uk")).agreement
            return a if a.summary and list(a.links) else None

        agreement = poll(f"agreement {agreement_id} with its summary and link for a reader of uk", read,
                         PUBLIC_WAIT, PUBLIC_POLL)
        self.assertEqual((agreement.served.requested_locale, agreement.served.served_locale,
                          agreement.served.fallback),
                         ("uk", "ro", True))
        self.assertEqual((agreement.country, agreement.kind, agreement.title, agreement.status,
                          pydate(agreement.status_since), agreement.summary, list(agreement.links),
                          agreement.outdated),
                         ("IT", pb.AGREEMENT_KIND_SOCIAL_SECURITY, title, pb.AGREEMENT_STATUS_IN_FORCE,
                          AGREEMENT_IN_FORCE, AGREEMENT_SUMMARY, [AGREEMENT_LINK], False))
        self.assertEqual([(h.status, pydate(h.on)) for h in agreement.history], expected_history)
        # In the public catalogue for Italy, social security, in force.
        request = pb.ListAgreementsRequest(locale="uk", country="IT", kind=pb.AGREEMENT_KIND_SOCIAL_SECURITY,
                                           status=pb.AGREEMENT_STATUS_IN_FORCE, page_size=50)
        found = []
        for _ in range(50):
            page = self.public.ListAgreements(request)
            found += [a for a in page.agreements if a.agreement_id == agreement_id]
            if found or not page.next_page_token:
                break
            request.page_token = page.next_page_token
        self.assertEqual([(a.title, a.served.served_locale, a.summary) for a in found],
                         [(title, "ro", AGREEMENT_SUMMARY)])

    # ------------------------------------------------------------------ 6. bad input

    def test_03_bad_input_is_invalid_argument_naming_the_field(self):
        # A slug with a space and a capital.
        bad = pb.CreateArticleRequest(request_id=request_id("article"), topic=pb.TOPIC_LEGAL_ASSISTANCE,
                                      countries=["IT"], slug="Bad Slug")
        self.assert_fields(["slug"], self.editor.CreateArticle, bad)
        # Every bad field is named: no topic, a country that is not a code, the slug.
        err = self.assert_code(grpc.StatusCode.INVALID_ARGUMENT, self.editor.CreateArticle, pb.CreateArticleRequest(
            request_id=request_id("article"), countries=["IT", "Italia"], slug="-bad-"))
        self.assertEqual(sorted(bad_fields(err)), ["countries[1]", "slug", "topic"], err.details())
        # A refused command wrote nothing: the same request id with the slug put right creates it.
        bad.slug = f"bad-slug-corrected-{RUN}"
        created = self.editor.CreateArticle(bad)
        self.seen(created.position)
        self.assertEqual(self.draft(created.article_id).slug, bad.slug)

        # A locale that is not BCP 47, and none at all.
        def edit_in(locale):
            return pb.EditArticleRequest(request_id=request_id("edit"), article_id=created.article_id, locale=locale,
                                         title="Titlu", body="Text.")
        self.assert_fields(["locale"], self.editor.EditArticle, edit_in("ro_RO!"))
        self.assert_fields(["locale"], self.editor.EditArticle, edit_in(""))
        # Readers' requests too, with no token: a bad locale, a bad slug, a query of too many terms.
        self.assert_fields(["locale"], self.public.GetArticle,
                           pb.GetArticleRequest(slug=bad.slug, locale="ro_RO!"))
        self.assert_fields(["slug"], self.public.GetArticle, pb.GetArticleRequest(slug="Bad Slug", locale="ro"))
        self.assert_fields(["query"], self.public.SearchArticles, pb.SearchArticlesRequest(
            query=" ".join(f"cuvant{i}" for i in range(13)), locale="ro"))
        # A translation of a source revision that does not exist.
        self.edit(created.article_id, "ro", "Titlu", "", "Text.")
        self.assert_rule("NO_SUCH_SOURCE_REVISION", self.editor.EditArticle, pb.EditArticleRequest(
            request_id=request_id("edit"), article_id=created.article_id, locale="ru", title="Заголовок",
            body="Текст.", translates=7))

    # ------------------------------------------------------------------ roles

    def test_04_the_editorial_side_needs_a_token_and_the_right_role(self):
        slug = f"roluri-{RUN}"
        no_token = pb.CreateArticleRequest(request_id=request_id("article"), topic=pb.TOPIC_LEGAL_ASSISTANCE,
                                           slug=slug)
        self.assert_code(grpc.StatusCode.UNAUTHENTICATED, self.anonymous_editorial.CreateArticle, no_token)
        self.assert_code(grpc.StatusCode.PERMISSION_DENIED, self.viewer.CreateArticle, no_token)
        self.assert_code(grpc.StatusCode.PERMISSION_DENIED, self.reviewer.CreateArticle, no_token)
        article_id = self.create_article(slug, countries=())
        self.assertEqual(self.edit(article_id, "ro", "Roluri", "", "Cine ce poate face."), 1)
        self.submit(article_id, "ro")
        # An editor alone does not approve; a viewer reads but does not publish.
        self.assert_code(grpc.StatusCode.PERMISSION_DENIED, self.approve, self.editor, article_id, "ro", 1)
        self.assert_code(grpc.StatusCode.PERMISSION_DENIED, self.viewer.PublishArticle,
                         self.publish_request(article_id, "ro"))
        self.assert_code(grpc.StatusCode.UNAUTHENTICATED, self.anonymous_editorial.GetArticleDraft,
                         pb.GetArticleDraftRequest(article_id=article_id, min_position=self.position))
        self.assertEqual(self.versions(article_id)["ro"].state, pb.VERSION_STATE_IN_REVIEW)
        # Nothing is public before publication; a reviewer may approve and publish.
        self.assert_code(grpc.StatusCode.NOT_FOUND, self.public.GetArticle, pb.GetArticleRequest(slug=slug))
        self.seen(self.approve(self.reviewer, article_id, "ro", 1).position)
        self.seen(self.reviewer.PublishArticle(self.publish_request(article_id, "ro")).position)
        # An article for every country (no countries) is listed for any of them.
        ro = self.read(slug, "", lambda a: a.article_id == article_id, f"article {slug} with the default locale")
        self.assertEqual((ro.served.requested_locale, ro.served.served_locale, ro.served.fallback, list(ro.countries)),
                         ("ro", "ro", False, []))
        listing = self.listed(pb.ListArticlesRequest(country="ES", page_size=50), article_id)
        self.assertIsNotNone(listing, "an article for every country is listed for Spain")


if __name__ == "__main__":
    main(ContentE2E, __doc__)
