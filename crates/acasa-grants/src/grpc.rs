//! The transport glue of `acasa.grants.v1.GrantService`: who may call what
//! and as whom (programme staff, the committee, evaluators, finance,
//! viewers), then the command ([`crate::commands`]) or the query
//! ([`crate::queries`]).

use acasa_domain::pair::Pair;
use acasa_eventstore::{Repository, RepositoryConfig};
use acasa_projection::Positions;
use acasa_runtime::Role;
use acasa_vault::{Keys, Vault};
use sqlx::PgPool;

use crate::domain::{
    application::Application,
    call::Call,
    official::Official,
    support::Support,
    training::{Course, Session},
};

/// Programme staff: calls' reading, courses, sessions, officials,
/// applications, procurement, monitoring, support; evaluators score with
/// their own token.
pub(crate) const STAFF: &[Role] = &[Role::Admin, Role::Caseworker];
/// The committee's decisions and the calls' budgets: recorded by an admin.
pub(crate) const COMMITTEE: &[Role] = &[Role::Admin];
/// Supplier payments.
pub(crate) const FINANCE: &[Role] = &[Role::Admin, Role::Finance];
/// Applications and what they hold (a pseudonymous person id, amounts):
/// staff and finance.
pub(crate) const CASE_READERS: &[Role] = &[Role::Admin, Role::Caseworker, Role::Finance];
/// The aggregate views, calls, courses and sessions (personal data only for staff).
pub(crate) const READERS: &[Role] = &[Role::Admin, Role::Caseworker, Role::Viewer, Role::Finance];

/// Calls and applications kept loaded per process.
pub const APPLICATIONS_CACHED: usize = 2_000;
/// Sessions (with their trainees' applications) kept loaded per process.
pub const SESSIONS_CACHED: usize = 1_000;
/// Officials (with their sessions) kept loaded per process.
pub const OFFICIALS_CACHED: usize = 500;
/// Courses kept loaded per process.
pub const COURSES_CACHED: usize = 200;
/// People's support records kept loaded per process.
pub const SUPPORT_CACHED: usize = 500;

/// The programme's targets that `GetProgress` measures against (0: none set).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Targets {
    /// Entrepreneurs trained.
    pub trained: u32,
    /// Grants awarded.
    pub grants: u32,
    /// Officials and SME-support staff trained.
    pub officials: u32,
}

impl Default for Targets {
    fn default() -> Self {
        Self { trained: 540, grants: 101, officials: 0 }
    }
}

/// Who reads, and so what they see.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reader {
    /// Admin, caseworker: everything, officials' and trainees' names included.
    Staff,
    /// Finance: applications, amounts and budgets; no names.
    Finance,
    /// Viewer: the aggregate views, no personal data.
    Viewer,
}

pub(crate) fn reader(principal: &acasa_runtime::Principal) -> Reader {
    if principal.has(Role::Admin) || principal.has(Role::Caseworker) {
        Reader::Staff
    } else if principal.has(Role::Finance) {
        Reader::Finance
    } else {
        Reader::Viewer
    }
}

/// The service's dependencies.
///
/// The call and its applications share one repository
/// (`Pair<Call, Application>`): a committee's approval is the call's
/// `Commit` and the application's `Approve` in one atomic batch. A session
/// and its trainees likewise (`Pair<Session, Application>`,
/// `Pair<Session, Official>`): cancelling a session unenrols them in the
/// same batch.
#[derive(Clone)]
pub struct GrantService {
    pub(crate) calls: Repository<Pair<Call, Application>>,
    pub(crate) courses: Repository<Course>,
    pub(crate) sessions: Repository<Pair<Session, Application>>,
    pub(crate) officials: Repository<Pair<Session, Official>>,
    pub(crate) support: Repository<Support>,
    pub(crate) keys: Keys,
    pub(crate) positions: Positions,
    pub(crate) pool: PgPool,
    pub(crate) targets: Targets,
}

impl std::fmt::Debug for GrantService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrantService").field("calls", &self.calls).finish()
    }
}

impl GrantService {
    /// The service over its repositories, its officials' vault and read models.
    pub fn new(store: acasa_eventstore::EventStore, vault: Vault, positions: Positions, pool: PgPool) -> Self {
        let config = |cache_capacity| RepositoryConfig { cache_capacity, ..RepositoryConfig::default() };
        Self {
            calls: Repository::new(store.clone(), config(APPLICATIONS_CACHED)),
            courses: Repository::new(store.clone(), config(COURSES_CACHED)),
            sessions: Repository::new(store.clone(), config(SESSIONS_CACHED)),
            officials: Repository::new(store.clone(), config(OFFICIALS_CACHED)),
            support: Repository::new(store, config(SUPPORT_CACHED)),
            keys: Keys::new(vault),
            positions,
            pool,
            targets: Targets::default(),
        }
    }

    /// The same service measuring progress against `targets`.
    #[must_use]
    pub fn with_targets(mut self, targets: Targets) -> Self {
        self.targets = targets;
        self
    }

    /// The gRPC service name, for health.
    pub const NAME: &'static str = "acasa.grants.v1.GrantService";
}
