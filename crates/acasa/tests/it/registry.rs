//! The registry over gRPC against real NATS and Postgres: registration,
//! read-your-writes, idempotency, duplicates, merge, roles, validation, and
//! erasure by crypto-shredding checked in the log, the vault and the read model.

use std::{sync::Arc, time::Duration};

use acasa_domain::formats::make_national_code;
use acasa_eventstore::{EventStore, Repository, RepositoryConfig};
use acasa_projection::{Positions, Worker};
use acasa_proto::{
    registry::v1::{self as pb, registry_service_client::RegistryServiceClient},
    r#type::v1::Date,
};
use acasa_registry::{grpc::RegistryService, projection::PeopleProjection};
use acasa_runtime::{Authenticator, Role, Serving, TokenIssuer};
use acasa_vault::{MasterKey, Vault};
use rand::Rng as _;
use tokio::sync::watch;
use tonic::{Code, Request, transport::Channel};
use tonic_types::StatusExt as _;

use crate::harness::{Env, JWT_KEY_HEX, eventually};

struct Api {
    _serving: Serving,
    client: RegistryServiceClient<Channel>,
    issuer: TokenIssuer,
    store: EventStore,
    vault: Vault,
    stop_worker: watch::Sender<bool>,
    worker: Option<tokio::task::JoinHandle<()>>,
}

pub(crate) fn vault(env: &Env) -> Vault {
    let master = MasterKey::from_bytes(&hex::decode(JWT_KEY_HEX).unwrap()).unwrap();
    Vault::new(env.pool.clone(), master, acasa_registry::VAULT_TABLE).unwrap()
}

pub(crate) fn worker(env: &Env, store: &EventStore) -> Worker<PeopleProjection> {
    Worker::new(
        Arc::new(PeopleProjection::new(vault(env))),
        env.pool.clone(),
        store.jetstream().clone(),
        crate::harness::worker_config(store),
    )
}

async fn start(env: &Env) -> Api {
    let key = hex::decode(JWT_KEY_HEX).unwrap();
    let store = EventStore::open(env.client().await, crate::harness::settings("registry")).await.unwrap();
    let service = RegistryService::new(
        Repository::new(store.clone(), RepositoryConfig::default()),
        vault(env),
        Positions::start(env.pool.clone()).with_log(store.jetstream().clone()),
        env.pool.clone(),
    );
    let auth = Authenticator::hs256(&key, "acasa", "acasa");
    let serving = Serving::start(
        "127.0.0.1:0".parse().unwrap(),
        service.routes(&auth),
        &[RegistryService::NAME],
        std::future::pending(),
    )
    .await
    .unwrap();
    let channel = Channel::from_shared(format!("http://{}", serving.local_addr)).unwrap().connect().await.unwrap();
    let (stop_worker, stopped) = watch::channel(false);
    let w = worker(env, &store);
    let worker = tokio::spawn(async move { w.run(stopped).await.unwrap() });
    Api {
        _serving: serving,
        client: RegistryServiceClient::new(channel),
        issuer: TokenIssuer::hs256(&key, "acasa", "acasa"),
        store,
        vault: vault(env),
        stop_worker,
        worker: Some(worker),
    }
}

impl Api {
    fn req<T>(&self, role: Role, msg: T) -> Request<T> {
        self.req_as("caseworker-7", role, msg)
    }

    fn req_as<T>(&self, subject: &str, role: Role, msg: T) -> Request<T> {
        let token = self.issuer.issue(subject, &[role], None, Duration::from_secs(300)).unwrap();
        let mut r = Request::new(msg);
        r.metadata_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
        r
    }

    async fn register(&mut self, body: pb::RegisterPersonRequest) -> pb::RegisterPersonResponse {
        let r = self.req(Role::Caseworker, body);
        self.client.register_person(r).await.unwrap().into_inner()
    }

    async fn get(&mut self, id: &str, min_position: u64) -> pb::Person {
        let r = self.req(Role::Viewer, pb::GetPersonRequest { person_id: id.into(), min_position });
        self.client.get_person(r).await.unwrap().into_inner().person.unwrap()
    }

    async fn search(&mut self, q: pb::SearchPeopleRequest) -> pb::SearchPeopleResponse {
        let r = self.req(Role::Viewer, q);
        self.client.search_people(r).await.unwrap().into_inner()
    }

    async fn stop_projection(&mut self) {
        self.stop_worker.send(true).unwrap();
        if let Some(w) = self.worker.take() {
            w.await.unwrap();
        }
    }
}

pub(crate) fn idnp() -> String {
    let prefix: String = (0..12).map(|_| char::from(b'0' + rand::rng().random_range(0..10u8))).collect();
    make_national_code(&prefix).unwrap()
}

pub(crate) fn person(request_id: &str, given: &str, family: &str) -> pb::RegisterPersonRequest {
    pb::RegisterPersonRequest {
        request_id: request_id.into(),
        details: Some(pb::PersonDetails {
            given_name: given.into(),
            family_name: family.into(),
            birth_date: Some(Date { year: 1988, month: 3, day: 9 }),
            sex: pb::Sex::Female as i32,
            idnp: idnp(),
            home_district: "Ungheni".into(),
            home_locality: "Sculeni".into(),
            languages: vec!["ro".into(), "it".into()],
            education: vec![pb::Education {
                level: pb::EducationLevel::Master as i32,
                field: "Agronomy".into(),
                institution: "Università di Bologna".into(),
                country: "IT".into(),
                year: 2014,
            }],
            profession: "agronomist".into(),
            scientific_field: "plant genetics".into(),
            skills: vec!["irrigation".into(), "Greenhouses".into()],
        }),
        contacts: Some(pb::Contacts {
            email: format!("{}@example.md", given.to_lowercase()),
            phone: "+393331234567".into(),
        }),
        country_of_residence: "IT".into(),
        categories: vec![pb::Category::MigrantAbroad as i32, pb::Category::DiasporaScientist as i32],
        interests: vec![pb::Interest::ScientificAssignment as i32],
    }
}

#[tokio::test]
async fn registration_is_idempotent_readable_at_once_and_unique_by_idnp() {
    let env = Env::new().await;
    let mut api = start(&env).await;
    let body = person("reg-1", "Ana", "Moraru");
    let first = api.register(body.clone()).await;
    let p = api.get(&first.person_id, first.position).await;
    assert_eq!(p.status, pb::PersonStatus::Active as i32);
    let d = p.details.clone().unwrap();
    assert_eq!((d.given_name.as_str(), d.family_name.as_str()), ("Ana", "Moraru"));
    assert_eq!(d.idnp, body.details.as_ref().unwrap().idnp);
    assert_eq!(d.education.len(), 1);
    assert_eq!(p.contacts.unwrap().email, "ana@example.md");
    assert_eq!(p.country_of_residence, "IT");

    // The same request id: the same answer, nothing appended.
    let before = api.store.last_sequence().await.unwrap();
    let again = api.register(body.clone()).await;
    assert_eq!((again.person_id.as_str(), again.position), (first.person_id.as_str(), first.position));
    assert_eq!(api.store.last_sequence().await.unwrap(), before);
    // The same request id for another registration is refused.
    let mut other = body.clone();
    other.details.as_mut().unwrap().given_name = "Elena".into();
    let e = api.client.register_person(api.req(Role::Caseworker, other)).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);

    // A second person with the same IDNP is refused with the first one's id.
    let mut dup = person("reg-2", "Irina", "Lungu");
    dup.details.as_mut().unwrap().idnp = body.details.as_ref().unwrap().idnp.clone();
    let e = api.client.register_person(api.req(Role::Caseworker, dup)).await.unwrap_err();
    assert_eq!(e.code(), Code::AlreadyExists);
    assert!(e.message().contains(&first.person_id), "{}", e.message());
    let info = e.get_error_details().error_info().cloned().unwrap();
    assert_eq!(info.metadata.get("existing_id"), Some(&first.person_id));
    // No personal data in the message.
    assert!(!e.message().contains(&body.details.as_ref().unwrap().idnp));
}

#[tokio::test]
async fn updates_returns_categories_consent_and_interests_show_in_the_read_model() {
    let env = Env::new().await;
    let mut api = start(&env).await;
    let r = api.register(person("r", "Vasile", "Ceban")).await;
    let id = r.person_id.clone();
    let partner = uuid::Uuid::now_v7().to_string();
    let mut c = api.client.clone();
    let mut details = person("x", "Vasile", "Ceban").details.unwrap();
    details.profession = "veterinarian".into();
    let pos = c
        .update_person_details(api.req(
            Role::Caseworker,
            pb::UpdatePersonDetailsRequest {
                request_id: "u1".into(),
                person_id: id.clone(),
                details: Some(details),
                country_of_residence: "DE".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .position;
    let p = api.get(&id, pos).await;
    assert_eq!(p.country_of_residence, "DE");
    assert_eq!(p.details.unwrap().profession, "veterinarian");

    let pos = c
        .give_consent(api.req(
            Role::Caseworker,
            pb::GiveConsentRequest {
                request_id: "c1".into(),
                person_id: id.clone(),
                purpose: pb::ConsentPurpose::PartnerSharing as i32,
                partner_id: partner.clone(),
                channel: pb::ConsentChannel::InPerson as i32,
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .position;
    let pos2 = c
        .withdraw_consent(api.req(
            Role::Caseworker,
            pb::WithdrawConsentRequest {
                request_id: "c2".into(),
                person_id: id.clone(),
                purpose: pb::ConsentPurpose::PartnerSharing as i32,
                partner_id: partner.clone(),
                channel: pb::ConsentChannel::Email as i32,
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .position;
    assert!(pos2 > pos);
    let e = c
        .withdraw_consent(api.req(
            Role::Caseworker,
            pb::WithdrawConsentRequest {
                request_id: "c3".into(),
                person_id: id.clone(),
                purpose: pb::ConsentPurpose::PartnerSharing as i32,
                partner_id: partner.clone(),
                channel: pb::ConsentChannel::Email as i32,
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "nothing left to withdraw");

    let ret = pb::ReturnDetails {
        return_date: Some(Date { year: 2025, month: 6, day: 1 }),
        district: "Cahul".into(),
        locality: "Giurgiulești".into(),
    };
    let pos = c
        .record_return(api.req(
            Role::Caseworker,
            pb::RecordReturnRequest { request_id: "ret".into(), person_id: id.clone(), return_details: Some(ret) },
        ))
        .await
        .unwrap()
        .into_inner()
        .position;
    let p = api.get(&id, pos).await;
    assert!(p.returned);
    assert_eq!(p.country_of_residence, "MD");
    assert_eq!(p.return_details.unwrap().locality, "Giurgiulești");
    assert_eq!(p.categories, [pb::Category::DiasporaScientist as i32, pb::Category::Returnee as i32]);
    let history: Vec<_> = p.consent_history.iter().map(|h| (h.given, h.recorded_by.as_str())).collect();
    assert_eq!(history, [(true, "caseworker-7"), (false, "caseworker-7")]);
    assert_eq!(p.consents.len(), 1);
    assert!(!p.consents[0].given);

    // A return before birth names its field.
    let early = pb::ReturnDetails { return_date: Some(Date { year: 1980, month: 1, day: 1 }), ..Default::default() };
    let e = c
        .record_return(api.req(
            Role::Caseworker,
            pb::RecordReturnRequest { request_id: "ret2".into(), person_id: id.clone(), return_details: Some(early) },
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    let fields: Vec<_> =
        e.get_error_details().bad_request().unwrap().field_violations.iter().map(|f| f.field.clone()).collect();
    assert_eq!(fields, ["return_details.return_date"]);

    // The last category cannot go.
    for (rid, cat) in [("rm1", pb::Category::DiasporaScientist)] {
        c.remove_category(api.req(
            Role::Caseworker,
            pb::RemoveCategoryRequest { request_id: rid.into(), person_id: id.clone(), category: cat as i32 },
        ))
        .await
        .unwrap();
    }
    let e = c
        .remove_category(api.req(
            Role::Caseworker,
            pb::RemoveCategoryRequest {
                request_id: "rm2".into(),
                person_id: id.clone(),
                category: pb::Category::Returnee as i32,
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);

    // A refused update does not keep the new IDNP it asked for.
    let mut later = person("x", "Vasile", "Ceban").details.unwrap();
    later.birth_date = Some(Date { year: 2025, month: 12, day: 1 });
    let wanted = later.idnp.clone();
    let e = c
        .update_person_details(api.req(
            Role::Caseworker,
            pb::UpdatePersonDetailsRequest {
                request_id: "u2".into(),
                person_id: id.clone(),
                details: Some(later),
                country_of_residence: "MD".into(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert_eq!(field_of(&e), ["details.birth_date"]);
    let mut other = person("other", "Dan", "Vrabie");
    other.details.as_mut().unwrap().idnp = wanted;
    api.register(other).await;

    // Replacements folded per person in one batch keep the last one.
    for (n, email) in ["a@example.md", "b@example.md"].iter().enumerate() {
        let contacts = Some(pb::Contacts { email: (*email).into(), phone: String::new() });
        c.update_contacts(api.req(
            Role::Caseworker,
            pb::UpdateContactsRequest { request_id: format!("uc{n}"), person_id: id.clone(), contacts },
        ))
        .await
        .unwrap();
    }
    let pos = c
        .record_interests(api.req(
            Role::Caseworker,
            pb::RecordInterestsRequest {
                request_id: "ri".into(),
                person_id: id.clone(),
                interests: vec![pb::Interest::Information as i32],
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .position;
    let p = api.get(&id, pos).await;
    assert_eq!(p.contacts.unwrap().email, "b@example.md");
    assert_eq!(p.interests, [pb::Interest::Information as i32]);
    assert_eq!(p.version, pos);
    rebuild_equals_live(&env, &mut api, &id).await;
    let e =
        api.client
            .get_person(api.req(
                Role::Viewer,
                pb::GetPersonRequest { person_id: uuid::Uuid::now_v7().to_string(), min_position: 0 },
            ))
            .await
            .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
}

#[tokio::test]
async fn search_pages_candidates_and_counts() {
    let env = Env::new().await;
    let mut api = start(&env).await;
    let mut last = 0;
    for i in 0..7 {
        let mut b = person(&format!("s{i}"), &format!("Ion{i}"), "Țurcanu");
        if i % 2 == 1 {
            b.country_of_residence = "FR".into();
        }
        last = api.register(b).await.position;
    }
    // Consent for programme participation makes the first one a candidate.
    let first =
        api.search(pb::SearchPeopleRequest { name: "ion0".into(), min_position: last, ..Default::default() }).await;
    assert_eq!(first.people.len(), 1);
    let pos = api
        .client
        .clone()
        .give_consent(api.req(
            Role::Caseworker,
            pb::GiveConsentRequest {
                request_id: "pc".into(),
                person_id: first.people[0].person_id.clone(),
                purpose: pb::ConsentPurpose::ProgrammeParticipation as i32,
                partner_id: String::new(),
                channel: pb::ConsentChannel::Paper as i32,
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .position;

    // Accent- and case-insensitive name search, paged two at a time, each person once.
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = api
            .search(pb::SearchPeopleRequest {
                name: "TURCANU".into(),
                page_size: 2,
                page_token: token.clone(),
                min_position: pos,
                ..Default::default()
            })
            .await;
        seen.extend(page.people.iter().map(|p| p.person_id.clone()));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    let unique: std::collections::BTreeSet<_> = seen.iter().collect();
    assert_eq!((seen.len(), unique.len()), (7, 7));

    let fr = api
        .search(pb::SearchPeopleRequest {
            country: "FR".into(),
            categories: vec![pb::Category::DiasporaScientist as i32],
            skills: vec!["greenhouses".into()],
            field: "genetics".into(),
            district: "ungheni".into(),
            ..Default::default()
        })
        .await;
    assert_eq!(fr.people.len(), 3);
    let none = api
        .search(pb::SearchPeopleRequest { categories: vec![pb::Category::Returnee as i32], ..Default::default() })
        .await;
    assert!(none.people.is_empty());

    let cands = api
        .client
        .clone()
        .list_candidates(api.req(
            Role::Viewer,
            pb::ListCandidatesRequest {
                purpose: pb::CandidatePurpose::ScientificAssignment as i32,
                field: "plant".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        cands.people.iter().map(|p| p.person_id.clone()).collect::<Vec<_>>(),
        [first.people[0].person_id.clone()]
    );

    let counts = api
        .client
        .clone()
        .count_people(api.req(Role::Viewer, pb::CountPeopleRequest { min_position: pos }))
        .await
        .unwrap()
        .into_inner()
        .counts;
    let get = |c: pb::Category, country: &str| {
        counts.iter().find(|x| x.category == c as i32 && x.country == country).map_or(0, |x| x.people)
    };
    assert_eq!(get(pb::Category::MigrantAbroad, "IT"), 4);
    assert_eq!(get(pb::Category::DiasporaScientist, "FR"), 3);

    let e = api
        .client
        .clone()
        .search_people(
            api.req(Role::Viewer, pb::SearchPeopleRequest { page_token: "garbage".into(), ..Default::default() }),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn same_name_and_birth_date_raise_a_flag_and_merge_keeps_the_record_findable() {
    let env = Env::new().await;
    let mut api = start(&env).await;
    let a = api.register(person("a", "Mihai", "Popa")).await;
    api.get(&a.person_id, a.position).await;
    let mut twin = person("b", "Mihai", "Popă");
    let twin_idnp = twin.details.as_ref().unwrap().idnp.clone();
    twin.contacts = None;
    let b = api.register(twin).await;
    assert_eq!(b.possible_duplicates, std::slice::from_ref(&a.person_id), "flagged at once from the read model");
    let c = api.register(person("c", "Mihai", "Popa")).await;

    let flags = api
        .client
        .clone()
        .list_duplicate_flags(
            api.req(Role::Caseworker, pb::ListDuplicateFlagsRequest { min_position: c.position, ..Default::default() }),
        )
        .await
        .unwrap()
        .into_inner()
        .flags;
    assert_eq!(flags.len(), 3, "a-b, a-c, b-c");

    // Dismiss a-c; merge b into a (admin only).
    let mut cl = api.client.clone();
    cl.dismiss_duplicate(api.req(
        Role::Caseworker,
        pb::DismissDuplicateRequest {
            request_id: "d".into(),
            person_id: c.person_id.clone(),
            other_person_id: a.person_id.clone(),
        },
    ))
    .await
    .unwrap();
    let merge = pb::MergePeopleRequest {
        request_id: "m".into(),
        survivor_person_id: a.person_id.clone(),
        merged_person_id: b.person_id.clone(),
    };
    let e = cl.merge_people(api.req(Role::Caseworker, merge.clone())).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    let pos = cl.merge_people(api.req(Role::Admin, merge.clone())).await.unwrap().into_inner().position;
    let again = cl.merge_people(api.req(Role::Admin, merge)).await.unwrap().into_inner().position;
    assert_eq!(pos, again, "a retried merge changes nothing");

    let merged = api.get(&b.person_id, pos).await;
    assert_eq!(merged.status, pb::PersonStatus::Merged as i32);
    assert_eq!(merged.merged_into, a.person_id);
    let survivor = api.get(&a.person_id, pos).await;
    assert!(survivor.possible_duplicates.is_empty(), "{:?}", survivor.possible_duplicates);
    let flags = cl
        .list_duplicate_flags(
            api.req(Role::Caseworker, pb::ListDuplicateFlagsRequest { min_position: pos, ..Default::default() }),
        )
        .await
        .unwrap()
        .into_inner()
        .flags;
    assert!(flags.is_empty(), "{flags:?}");
    // The merged record is read-only, and its IDNP leads to the survivor.
    let e = cl
        .add_category(api.req(
            Role::Caseworker,
            pb::AddCategoryRequest { request_id: "x".into(), person_id: b.person_id.clone(), category: 2 },
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    let mut again = person("z", "Someone", "Else");
    again.details.as_mut().unwrap().idnp = twin_idnp;
    let e = cl.register_person(api.req(Role::Caseworker, again)).await.unwrap_err();
    assert_eq!(e.code(), Code::AlreadyExists);
    assert_eq!(e.get_error_details().error_info().unwrap().metadata.get("existing_id"), Some(&a.person_id));

    rebuild_equals_live(&env, &mut api, &a.person_id).await;
}

/// A rebuild (the whole log in one batch, set-wise) gives the read model built live.
async fn rebuild_equals_live(env: &Env, api: &mut Api, probe: &str) {
    let last = crate::harness::last_commit(&api.store).await;
    api.get(probe, last).await;
    let live = sorted_lines(read_model_text(env).await);
    api.stop_projection().await;
    acasa_projection::rebuild_reset(&env.pool, &PeopleProjection::new(vault(env))).await.unwrap();
    let mut w = worker(env, &api.store);
    assert!(w.try_lead().await.unwrap());
    assert_eq!(w.catch_up_to(last).await.unwrap(), last);
    assert_eq!(sorted_lines(read_model_text(env).await), live);
}

pub(crate) fn sorted_lines(s: String) -> Vec<String> {
    let mut v: Vec<String> = s.lines().map(str::to_owned).collect();
    v.sort();
    v
}

/// Every byte of the registry stream, for searching plaintext.
async fn log_bytes(store: &EventStore) -> Vec<u8> {
    // Every message as stored: commits, claims and request records.
    let mut all = Vec::new();
    for seq in 1..=store.last_sequence().await.unwrap() {
        let (subject, payload) = store.get_raw(seq).await.unwrap();
        all.extend(subject.as_bytes());
        all.extend(payload.iter());
    }
    all
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

pub(crate) async fn read_model_text(env: &Env) -> String {
    let rows: Vec<String> = sqlx::query_scalar(
        "SELECT row_to_json(p)::text FROM registry.people p \
         UNION ALL SELECT row_to_json(h)::text FROM registry.consent_history h \
         UNION ALL SELECT row_to_json(f)::text FROM registry.duplicate_flags f",
    )
    .fetch_all(&env.pool)
    .await
    .unwrap();
    rows.join("\n")
}

#[tokio::test]
async fn erasure_leaves_no_personal_field_readable_anywhere_and_keeps_the_counts() {
    let env = Env::new().await;
    let mut api = start(&env).await;
    // A careless client's request id carrying the person's name is not kept in clear either.
    let body = person("Zamfira.Ursachi-1988", "Zamfira", "Ursachi");
    let idnp = body.details.as_ref().unwrap().idnp.clone();
    let secrets = ["Zamfira", "Ursachi", idnp.as_str(), "zamfira@example.md", "+393331234567", "Sculeni"];
    let r = api.register(body).await;
    let mut other = person("k", "Petru", "Botnaru");
    other.contacts = Some(pb::Contacts { email: "petru@example.md".into(), phone: "+37369000111".into() });
    other.details.as_mut().unwrap().home_locality = "Nisporeni".into();
    let keep = api.register(other).await;
    let id = uuid::Uuid::parse_str(&r.person_id).unwrap();

    // Before: readable in the read model (so the checks below can fail), sealed in the log.
    api.get(&r.person_id, keep.position).await;
    let text = read_model_text(&env).await;
    assert!(secrets.iter().all(|s| text.contains(s)), "the read model holds the details before erasure");
    let log = log_bytes(&api.store).await;
    for s in secrets {
        assert!(!contains(&log, s), "{s} is in clear in the log");
    }
    assert!(api.vault.key(id).await.unwrap().is_some());

    // Only an admin erases.
    let erase = pb::ErasePersonRequest { request_id: "erase".into(), person_id: r.person_id.clone() };
    let e = api.client.clone().erase_person(api.req(Role::Caseworker, erase.clone())).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    let pos = api.client.clone().erase_person(api.req(Role::Admin, erase)).await.unwrap().into_inner().position;

    let p = api.get(&r.person_id, pos).await;
    assert_eq!(p.status, pb::PersonStatus::Erased as i32);
    assert!(p.details.is_none() && p.contacts.is_none() && p.return_details.is_none());
    assert_eq!(p.categories, [pb::Category::MigrantAbroad as i32, pb::Category::DiasporaScientist as i32]);
    assert_eq!(p.country_of_residence, "IT");
    assert!(api.vault.key(id).await.unwrap().is_none(), "the data key is destroyed");
    let vault_rows: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM registry_vault.data_keys WHERE subject_id = $1 AND wrapped IS NOT NULL",
    )
    .bind(id)
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert_eq!(vault_rows, 0);
    let text = read_model_text(&env).await;
    for s in secrets {
        assert!(!text.contains(s), "{s} is still in the read model");
    }
    assert!(text.contains("Botnaru"), "other people are untouched");
    let found = api
        .search(pb::SearchPeopleRequest { name: "ursachi".into(), include_inactive: true, ..Default::default() })
        .await;
    assert!(found.people.is_empty());

    // The log is intact and the sealed payloads no longer open for anyone: a
    // rebuild from the start of the stream writes no personal field back.
    api.stop_projection().await;
    acasa_projection::rebuild_reset(&env.pool, &PeopleProjection::new(vault(&env))).await.unwrap();
    let mut w = worker(&env, &api.store);
    assert!(w.try_lead().await.unwrap());
    let target = api.store.last_sequence().await.unwrap();
    assert_eq!(w.catch_up_to(target).await.unwrap(), target);
    let text = read_model_text(&env).await;
    for s in secrets {
        assert!(!text.contains(s), "{s} came back from a rebuild");
    }
    let status: String = sqlx::query_scalar("SELECT status FROM registry.people WHERE person_id = $1")
        .bind(id)
        .fetch_one(&env.pool)
        .await
        .unwrap();
    assert_eq!(status, "erased");
    let counted: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM registry.people WHERE 1 = ANY (categories) AND country = 'IT' AND status <> 'merged'",
    )
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert_eq!(counted, 2, "the erased person still counts");
    let status = acasa_projection::status(&env.pool, acasa_registry::PROJECTION).await.unwrap();
    assert_eq!(status.poison_count, 0);

    // The IDNP is free again for a new registration.
    let mut back = person("back", "Zamfira", "Ursachi");
    back.details.as_mut().unwrap().idnp = idnp.clone();
    let again = api.register(back).await;
    assert_ne!(again.person_id, r.person_id);
}

fn field_of(e: &tonic::Status) -> Vec<String> {
    e.get_error_details()
        .bad_request()
        .map(|b| b.field_violations.iter().map(|f| f.field.clone()).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn bad_inputs_are_refused_with_their_field_and_nothing_crashes() {
    let env = Env::new().await;
    let mut api = start(&env).await;
    type Edit = fn(&mut pb::RegisterPersonRequest);
    let cases: Vec<(&str, Edit)> = vec![
        ("request_id", |b| b.request_id.clear()),
        ("request_id", |b| b.request_id = "has space".into()),
        ("details", |b| b.details = None),
        ("details.given_name", |b| b.details.as_mut().unwrap().given_name = "  ".into()),
        ("details.family_name", |b| b.details.as_mut().unwrap().family_name = "x".repeat(101)),
        ("details.family_name", |b| b.details.as_mut().unwrap().family_name = "Rusu\u{0}".into()),
        ("details.birth_date", |b| b.details.as_mut().unwrap().birth_date = None),
        ("details.birth_date", |b| {
            b.details.as_mut().unwrap().birth_date = Some(Date { year: 2999, month: 1, day: 1 })
        }),
        ("details.birth_date", |b| {
            b.details.as_mut().unwrap().birth_date = Some(Date { year: 2001, month: 2, day: 29 })
        }),
        ("details.birth_date", |b| {
            b.details.as_mut().unwrap().birth_date = Some(Date { year: i32::MIN, month: -1, day: 99 })
        }),
        ("details.idnp", |b| b.details.as_mut().unwrap().idnp = "1234567890123".into()),
        ("details.idnp", |b| b.details.as_mut().unwrap().idnp = "12345".into()),
        ("details.sex", |b| b.details.as_mut().unwrap().sex = 42),
        ("details.languages[1]", |b| b.details.as_mut().unwrap().languages = vec!["ro".into(), "english".into()]),
        ("details.languages", |b| b.details.as_mut().unwrap().languages = vec!["ro".into(); 21]),
        ("details.education[0].country", |b| b.details.as_mut().unwrap().education[0].country = "ZZ".into()),
        ("details.education[0].level", |b| b.details.as_mut().unwrap().education[0].level = 0),
        ("details.education[0].year", |b| b.details.as_mut().unwrap().education[0].year = 3000),
        ("details.skills", |b| b.details.as_mut().unwrap().skills = vec!["s".into(); 51]),
        ("details.skills[0]", |b| b.details.as_mut().unwrap().skills = vec![String::new()]),
        ("details.home_district", |b| b.details.as_mut().unwrap().home_district = "d".repeat(101)),
        ("contacts.email", |b| b.contacts.as_mut().unwrap().email = "not-an-email".into()),
        ("contacts.phone", |b| b.contacts.as_mut().unwrap().phone = "069123456".into()),
        ("country_of_residence", |b| b.country_of_residence = "XX".into()),
        ("country_of_residence", |b| b.country_of_residence = "it".into()),
        ("country_of_residence", |b| b.country_of_residence.clear()),
        ("categories", |b| b.categories.clear()),
        ("categories[1]", |b| b.categories = vec![1, 99]),
        ("categories[1]", |b| b.categories = vec![1, 1]),
        ("interests[0]", |b| b.interests = vec![-3]),
    ];
    let mut client = api.client.clone();
    for (i, (field, edit)) in cases.iter().enumerate() {
        let mut b = person(&format!("bad-{i}"), "Ion", "Rusu");
        edit(&mut b);
        let e = client.register_person(api.req(Role::Caseworker, b)).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "case {i} ({field}): {e:?}");
        assert_eq!(field_of(&e), [field.to_string()], "case {i}");
    }
    // Other calls.
    let e = client
        .get_person(api.req(Role::Viewer, pb::GetPersonRequest { person_id: "nope".into(), min_position: 0 }))
        .await
        .unwrap_err();
    assert_eq!(field_of(&e), ["person_id"]);
    let e = client
        .give_consent(api.req(
            Role::Caseworker,
            pb::GiveConsentRequest {
                request_id: "g".into(),
                person_id: uuid::Uuid::now_v7().to_string(),
                purpose: pb::ConsentPurpose::PartnerSharing as i32,
                partner_id: String::new(),
                channel: 99,
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(field_of(&e), ["partner_id", "channel"]);
    let e = client
        .search_people(
            api.req(Role::Viewer, pb::SearchPeopleRequest { page_size: 1000, name: "a".into(), ..Default::default() }),
        )
        .await
        .unwrap_err();
    assert_eq!(field_of(&e), ["name", "page_size"]);
    let e = client.list_candidates(api.req(Role::Viewer, pb::ListCandidatesRequest::default())).await.unwrap_err();
    assert_eq!(field_of(&e), ["purpose"]);

    // Roles and tokens.
    let e = client.register_person(api.req(Role::Viewer, person("v", "A", "B"))).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    let e = client.register_person(Request::new(person("v", "A", "B"))).await.unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
    let e = client.register_person(api.req(Role::Partner, person("v", "A", "B"))).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);

    // The server is still serving.
    let ok = api.register(person("fine", "Ion", "Rusu")).await;
    let p = eventually(Duration::from_secs(10), || {
        let mut c = api.client.clone();
        let r =
            api.req(Role::Viewer, pb::GetPersonRequest { person_id: ok.person_id.clone(), min_position: ok.position });
        async move { c.get_person(r).await.ok() }
    })
    .await;
    assert!(p.into_inner().person.is_some());
}

/// Bytes stored by every stream of the account (the log, and any bucket).
async fn stored_bytes(env: &Env) -> u64 {
    let js = async_nats::jetstream::new(env.client().await);
    js.query_account().await.unwrap().storage
}

#[tokio::test]
async fn a_request_id_is_one_call_another_method_under_it_is_refused_and_callers_do_not_share_ids() {
    let env = Env::new().await;
    let mut api = start(&env).await;
    let r = api.register(person("reg-a", "Ana", "Moraru")).await;
    let partner = uuid::Uuid::now_v7().to_string();
    let mut c = api.client.clone();
    let consent = pb::GiveConsentRequest {
        request_id: "consent-1".into(),
        person_id: r.person_id.clone(),
        purpose: pb::ConsentPurpose::PartnerSharing as i32,
        partner_id: partner.clone(),
        channel: pb::ConsentChannel::InPerson as i32,
    };
    let given = c.give_consent(api.req(Role::Caseworker, consent)).await.unwrap().into_inner().position;
    // WithdrawConsent's body is byte-for-byte GiveConsent's: the method tells them apart.
    let withdraw = pb::WithdrawConsentRequest {
        request_id: "consent-1".into(),
        person_id: r.person_id.clone(),
        purpose: pb::ConsentPurpose::PartnerSharing as i32,
        partner_id: partner.clone(),
        channel: pb::ConsentChannel::InPerson as i32,
    };
    let e = c.withdraw_consent(api.req(Role::Caseworker, withdraw.clone())).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    let p = api.get(&r.person_id, given).await;
    assert!(p.consents.iter().any(|k| k.partner_id == partner && k.given), "the consent stays given");
    // Under a request id of its own the withdrawal happens.
    let withdraw = pb::WithdrawConsentRequest { request_id: "consent-2".into(), ..withdraw };
    let at = c.withdraw_consent(api.req(Role::Caseworker, withdraw)).await.unwrap().into_inner().position;
    assert!(api.get(&r.person_id, at).await.consents.iter().any(|k| k.partner_id == partner && !k.given));

    let add = pb::AddCategoryRequest {
        request_id: "cat-1".into(),
        person_id: r.person_id.clone(),
        category: pb::Category::Returnee as i32,
    };
    let added = c.add_category(api.req(Role::Caseworker, add)).await.unwrap().into_inner().position;
    let remove = pb::RemoveCategoryRequest {
        request_id: "cat-1".into(),
        person_id: r.person_id.clone(),
        category: pb::Category::Returnee as i32,
    };
    let e = c.remove_category(api.req(Role::Caseworker, remove)).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert!(api.get(&r.person_id, added).await.categories.contains(&(pb::Category::Returnee as i32)));

    // Another caseworker's "reg-a" is another call: another person.
    let theirs = c
        .register_person(api.req_as("caseworker-8", Role::Caseworker, person("reg-a", "Ion", "Rusu")))
        .await
        .unwrap()
        .into_inner();
    assert_ne!(theirs.person_id, r.person_id);
    assert_eq!(api.get(&theirs.person_id, theirs.position).await.details.unwrap().given_name, "Ion");
}

#[tokio::test]
async fn one_idnp_one_person_however_registrations_race() {
    let env = Env::new().await;
    let api = start(&env).await;
    let shared = idnp();
    let mut tasks = Vec::new();
    for i in 0..16 {
        let mut body = person(&format!("race-{i}"), "Maria", "Ciobanu");
        body.details.as_mut().unwrap().idnp = shared.clone();
        let mut c = api.client.clone();
        let r = api.req(Role::Caseworker, body);
        tasks.push(tokio::spawn(async move { c.register_person(r).await }));
    }
    let mut winners = Vec::new();
    let mut holders = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            Ok(r) => winners.push(r.into_inner().person_id),
            Err(e) => {
                assert_eq!(e.code(), Code::AlreadyExists, "{e:?}");
                holders.push(e.get_error_details().error_info().unwrap().metadata["existing_id"].clone());
            }
        }
    }
    assert_eq!(winners.len(), 1, "exactly one registration holds the IDNP");
    assert!(holders.iter().all(|h| *h == winners[0]), "every refusal names the holder");
}

#[tokio::test]
async fn a_corrected_idnp_frees_the_old_one_and_refused_registrations_store_nothing() {
    let env = Env::new().await;
    let mut api = start(&env).await;
    let mut c = api.client.clone();
    let first = person("p-1", "Petru", "Munteanu");
    let mistyped = first.details.as_ref().unwrap().idnp.clone();
    let a = api.register(first.clone()).await;
    // The caseworker corrects the IDNP: the mistyped one (someone else's) is free again.
    let mut corrected = first.details.clone().unwrap();
    corrected.idnp = idnp();
    c.update_person_details(api.req(
        Role::Caseworker,
        pb::UpdatePersonDetailsRequest {
            request_id: "fix-1".into(),
            person_id: a.person_id.clone(),
            details: Some(corrected.clone()),
            country_of_residence: "IT".into(),
        },
    ))
    .await
    .unwrap();
    let mut owner = person("p-2", "Olga", "Rotaru");
    owner.details.as_mut().unwrap().idnp = mistyped.clone();
    let b = api.register(owner).await;
    assert_ne!(b.person_id, a.person_id);

    // A refused registration (the corrected IDNP is held) writes nothing anywhere.
    let before = stored_bytes(&env).await;
    let last = api.store.last_sequence().await.unwrap();
    for i in 0..5 {
        let mut dup = person(&format!("dup-{i}"), "Petru", "Munteanu");
        dup.details.as_mut().unwrap().idnp = corrected.idnp.clone();
        let e = c.register_person(api.req(Role::Caseworker, dup)).await.unwrap_err();
        assert_eq!(e.code(), Code::AlreadyExists);
    }
    assert_eq!(api.store.last_sequence().await.unwrap(), last);
    assert_eq!(stored_bytes(&env).await, before, "refused registrations grew a stream");

    // Erasure frees the IDNP in the same write.
    c.erase_person(
        api.req(Role::Admin, pb::ErasePersonRequest { request_id: "erase-b".into(), person_id: b.person_id.clone() }),
    )
    .await
    .unwrap();
    let mut again = person("p-3", "Olga", "Rotaru");
    again.details.as_mut().unwrap().idnp = mistyped;
    let c2 = api.register(again).await;
    assert_ne!(c2.person_id, b.person_id);
}

/// Issue 11: erasing a person whose duplicates were merged into them erases
/// those records too (the same human), in the log, the vault, the read model
/// and the IDNP claims; a merged record is erased through its survivor only.
#[tokio::test]
async fn erasure_reaches_every_record_merged_into_the_person() {
    let env = Env::new().await;
    let mut api = start(&env).await;
    let mut c = api.client.clone();
    let a = api.register(person("ma", "Valentina", "Cojocaru")).await;
    let mut twin = person("mb", "Valentina", "Cojocaru");
    twin.contacts = Some(pb::Contacts { email: "vali.c@example.md".into(), phone: "+37360111222".into() });
    twin.details.as_mut().unwrap().home_locality = "Cantemir".into();
    let twin_idnp = twin.details.as_ref().unwrap().idnp.clone();
    let b = api.register(twin).await;
    // A record merged into b before b itself is merged into a: reached transitively.
    let mut third = person("mc", "Valentina", "Cojocaru");
    third.details.as_mut().unwrap().home_locality = "Taraclia".into();
    let third_idnp = third.details.as_ref().unwrap().idnp.clone();
    let d = api.register(third).await;
    let merge = |rid: &str, survivor: &str, merged: &str| pb::MergePeopleRequest {
        request_id: rid.into(),
        survivor_person_id: survivor.into(),
        merged_person_id: merged.into(),
    };
    c.merge_people(api.req(Role::Admin, merge("m1", &b.person_id, &d.person_id))).await.unwrap();
    let pos = c.merge_people(api.req(Role::Admin, merge("m2", &a.person_id, &b.person_id))).await.unwrap();
    let pos = pos.into_inner().position;
    assert!(api.get(&b.person_id, pos).await.details.is_some(), "readable before the erasure");

    // A merged record is erased through its survivor.
    let e = c
        .erase_person(
            api.req(Role::Admin, pb::ErasePersonRequest { request_id: "e-b".into(), person_id: b.person_id.clone() }),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(e.message().contains(&a.person_id), "{}", e.message());

    let erase = pb::ErasePersonRequest { request_id: "e-a".into(), person_id: a.person_id.clone() };
    let pos = c.erase_person(api.req(Role::Admin, erase.clone())).await.unwrap().into_inner().position;
    let again = c.erase_person(api.req(Role::Admin, erase)).await.unwrap().into_inner().position;
    assert_eq!(again, pos, "a retried erasure answers the first position");
    for id in [&a.person_id, &b.person_id, &d.person_id] {
        let p = api.get(id, pos).await;
        assert!(p.details.is_none() && p.contacts.is_none(), "{id} still readable: {p:?}");
        let uuid = uuid::Uuid::parse_str(id).unwrap();
        assert!(api.vault.key(uuid).await.unwrap().is_none(), "{id} keeps its data key");
    }
    let text = read_model_text(&env).await;
    for s in ["Valentina", "Cojocaru", "vali.c@example.md", "Cantemir", "Taraclia", twin_idnp.as_str()] {
        assert!(!text.contains(s), "{s} is still in the read model");
    }
    let found = api
        .search(pb::SearchPeopleRequest { name: "cojocaru".into(), include_inactive: true, ..Default::default() })
        .await;
    assert!(found.people.is_empty(), "{:?}", found.people);
    // Their IDNPs are free again.
    for (i, idnp) in [twin_idnp, third_idnp].into_iter().enumerate() {
        let mut back = person(&format!("back-{i}"), "Someone", "Else");
        back.details.as_mut().unwrap().idnp = idnp;
        api.register(back).await;
    }
    rebuild_equals_live(&env, &mut api, &a.person_id).await;
}

/// Issue 11: a vault failure in the projection (here: the wrong master key)
/// is infrastructure: the batch is retried, never recorded as poison and
/// skipped (skipping an erasure would leave personal columns in clear).
#[tokio::test]
async fn a_vault_failure_in_the_projection_is_retried_not_poisoned() {
    let env = Env::new().await;
    let mut api = start(&env).await;
    api.stop_projection().await;
    let r = api.register(person("v-1", "Elena", "Grosu")).await;
    let wrong =
        Vault::new(env.pool.clone(), MasterKey::from_bytes(&[0x42; 32]).unwrap(), acasa_registry::VAULT_TABLE).unwrap();
    let mut w = Worker::new(
        Arc::new(PeopleProjection::new(wrong)),
        env.pool.clone(),
        api.store.jetstream().clone(),
        crate::harness::worker_config(&api.store),
    );
    assert!(w.try_lead().await.unwrap());
    let target = crate::harness::last_commit(&api.store).await;
    assert!(w.catch_up_to(target).await.is_err(), "the batch fails");
    let status = acasa_projection::status(&env.pool, acasa_registry::PROJECTION).await.unwrap();
    assert_eq!(status.poison_count, 0, "nothing recorded as poison");
    assert!(status.position < r.position, "the checkpoint did not move past the registration");
    w.release().await;
    // With the right key the same commit applies.
    let mut w = worker(&env, &api.store);
    assert!(w.try_lead().await.unwrap());
    assert_eq!(w.catch_up_to(target).await.unwrap(), target);
    let found: Option<String> = sqlx::query_scalar("SELECT given_name FROM registry.people WHERE person_id = $1::uuid")
        .bind(&r.person_id)
        .fetch_optional(&env.pool)
        .await
        .unwrap()
        .flatten();
    assert_eq!(found.as_deref(), Some("Elena"));
}

/// Issue 11: a replica other than the erasing one, holding the person's
/// decoded state in its aggregate cache (with or without the key still in its
/// key cache), answers FAILED_PRECONDITION — never INTERNAL — and writes nothing.
#[tokio::test]
async fn another_replica_refuses_commands_on_an_erased_person_it_had_cached() {
    let env = Env::new().await;
    let mut api = start(&env).await;
    let key = hex::decode(JWT_KEY_HEX).unwrap();
    let auth = Authenticator::hs256(&key, "acasa", "acasa");
    let mut replicas = Vec::new();
    for ttl in [Duration::ZERO, acasa_vault::Keys::TTL] {
        let store = EventStore::open(env.client().await, crate::harness::settings("registry")).await.unwrap();
        let service = RegistryService::new(
            Repository::new(store, RepositoryConfig::default()),
            vault(&env),
            Positions::start(env.pool.clone()),
            env.pool.clone(),
        )
        .with_keys(acasa_vault::Keys::with_ttl(vault(&env), ttl));
        let serving = Serving::start(
            "127.0.0.1:0".parse().unwrap(),
            service.routes(&auth),
            &[RegistryService::NAME],
            std::future::pending(),
        )
        .await
        .unwrap();
        let channel = Channel::from_shared(format!("http://{}", serving.local_addr)).unwrap().connect().await.unwrap();
        replicas.push((serving, RegistryServiceClient::new(channel)));
    }
    let contacts = |rid: &str, id: &str| pb::UpdateContactsRequest {
        request_id: rid.into(),
        person_id: id.into(),
        contacts: Some(pb::Contacts { email: "new@example.md".into(), phone: String::new() }),
    };
    for (i, (_, replica)) in replicas.iter_mut().enumerate() {
        let r = api.register(person(&format!("rep-{i}"), "Nicolae", "Lungu")).await;
        // The replica loads and caches the person.
        replica.update_contacts(api.req(Role::Caseworker, contacts(&format!("c1-{i}"), &r.person_id))).await.unwrap();
        let erase = pb::ErasePersonRequest { request_id: format!("e-{i}"), person_id: r.person_id.clone() };
        api.client.clone().erase_person(api.req(Role::Admin, erase)).await.unwrap();
        let last = api.store.last_sequence().await.unwrap();
        let e = replica
            .update_contacts(api.req(Role::Caseworker, contacts(&format!("c2-{i}"), &r.person_id)))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::FailedPrecondition, "replica {i}: {e:?}");
        assert_eq!(api.store.last_sequence().await.unwrap(), last, "replica {i} wrote after the erasure");
    }
}

/// Issue 11 (reproduced from outside): two registrations of the same returnee
/// moments apart (a double submission under two request ids) — the second is
/// answered with the first as a possible duplicate, without anyone reading in
/// between.
#[tokio::test]
async fn a_registration_moments_after_its_twin_names_it_as_a_possible_duplicate() {
    let env = Env::new().await;
    let mut api = start(&env).await;
    for i in 0..5 {
        let family = format!("Doubled{i}");
        let first = api.register(person(&format!("twin-a-{i}"), "Aurelia", &family)).await;
        let second = api.register(person(&format!("twin-b-{i}"), "Aurelia", &family)).await;
        assert!(first.duplicates_checked && second.duplicates_checked);
        assert!(first.possible_duplicates.is_empty());
        assert_eq!(second.possible_duplicates, std::slice::from_ref(&first.person_id), "pair {i}");
        let third = api.register(person(&format!("twin-c-{i}"), "Aurelia", &family)).await;
        let mut both = vec![first.person_id.clone(), second.person_id.clone()];
        both.sort();
        assert_eq!(third.possible_duplicates, both, "triple {i}");
    }
    // A stopped projection: the one registered just before is still named
    // (by the mark), and the answer says older ones may be missing.
    api.stop_projection().await;
    let started = std::time::Instant::now();
    let first = api.register(person("late-a", "Aurelia", "Stopped")).await;
    let second = api.register(person("late-b", "Aurelia", "Stopped")).await;
    assert!(first.duplicates_checked, "nothing similar before it: nothing to wait for");
    assert_eq!(second.possible_duplicates, [first.person_id]);
    assert!(!second.duplicates_checked);
    assert!(started.elapsed() < Duration::from_secs(5));
}

/// Issue 11 (reproduced from outside): a position past the end of the log is
/// refused at once with OUT_OF_RANGE naming the field, instead of holding a
/// database connection until the caller's deadline.
#[tokio::test]
async fn a_position_past_the_end_of_the_log_is_out_of_range_at_once() {
    let env = Env::new().await;
    let mut api = start(&env).await;
    let r = api.register(person("oor", "Ilie", "Cazacu")).await;
    let started = std::time::Instant::now();
    let mut calls = Vec::new();
    for _ in 0..50 {
        let mut c = api.client.clone();
        let req =
            api.req(Role::Viewer, pb::GetPersonRequest { person_id: r.person_id.clone(), min_position: u64::MAX / 2 });
        calls.push(tokio::spawn(async move { c.get_person(req).await }));
    }
    for call in calls {
        let e = call.await.unwrap().unwrap_err();
        assert_eq!(e.code(), Code::OutOfRange, "{e:?}");
        assert_eq!(field_of(&e), ["min_position"]);
    }
    assert!(started.elapsed() < Duration::from_secs(10), "answered at once, not at the deadline");
    // A reachable position is still served.
    assert_eq!(api.get(&r.person_id, r.position).await.details.unwrap().given_name, "Ilie");
}

/// Issue 11: search strings and skill filters are bounded, a forged page
/// token is a bad `page_token` (not INTERNAL), and a server's statements are
/// cancelled past the statement timeout, answering UNAVAILABLE.
#[tokio::test]
async fn searches_are_bounded_and_slow_statements_are_cancelled() {
    let env = Env::new().await;
    let api = start(&env).await;
    let mut c = api.client.clone();
    let long_name = pb::SearchPeopleRequest { name: "a".repeat(10_000), ..Default::default() };
    let e = c.search_people(api.req(Role::Viewer, long_name)).await.unwrap_err();
    assert_eq!((e.code(), field_of(&e)), (Code::InvalidArgument, vec!["name".to_owned()]));
    let long_skill = pb::SearchPeopleRequest { skills: vec!["ok".into(), "s".repeat(5_000)], ..Default::default() };
    let e = c.search_people(api.req(Role::Viewer, long_skill)).await.unwrap_err();
    assert_eq!((e.code(), field_of(&e)), (Code::InvalidArgument, vec!["skills[1]".to_owned()]));

    let vars = env.vars();
    let mut config = acasa_runtime::Config::from_lookup(|k| vars.get(k).cloned()).unwrap();
    config.db_statement_timeout_ms = 100;
    let pool = acasa::app::pool_with(&config, 1, Some(acasa::app::statement_timeout(&config))).await.unwrap();
    let shown: String = sqlx::query_scalar("SHOW statement_timeout").fetch_one(&pool).await.unwrap();
    assert_eq!(shown, "100ms");
    let e = sqlx::query("SELECT pg_sleep(5)").execute(&pool).await.unwrap_err();
    let status: tonic::Status = acasa_runtime::ApiError::from(e).into();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(!status.message().contains("cancel"), "no database text: {}", status.message());
}
