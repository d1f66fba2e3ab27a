//! The demo's commands: validate the request into domain values, let the
//! counter decide, append (with its name's claim) through the command loop.

use acasa_domain::Violations;
use acasa_proto::demo::v1 as pb;
use acasa_runtime::{ApiError, Principal, request};
use uuid::Uuid;

use crate::{
    domain::{Amount, CounterCommand, CounterEvent, CounterName},
    grpc::CounterService,
    validate,
};

impl CounterService {
    pub(crate) async fn create(
        &self,
        principal: &Principal,
        req: &pb::CreateCounterRequest,
    ) -> Result<pb::CreateCounterResponse, ApiError> {
        let mut v = Violations::new();
        let meta = request::meta_of(principal, &mut v, req);
        let name = v.check("name", CounterName::parse(&req.name));
        if req.limit < 0 {
            v.add("limit", "must not be negative (0 means unbounded)");
        }
        v.clone().into_result()?;
        let (Some(meta), Some(name)) = (meta, name) else { return Err(v.into()) };

        // A retry addresses the counter its first attempt created.
        let (id, fresh) = match self.repo.created_by(&meta).await? {
            Some(id) => (
                Uuid::parse_str(&id).map_err(|_| ApiError::Internal("a request record names a non-uuid".into()))?,
                false,
            ),
            None => (Uuid::now_v7(), true),
        };
        let command = CounterCommand::Create { id, name: name.clone(), limit: req.limit };
        let outcome = if fresh {
            self.repo.execute_new_with(&id.to_string(), &command, &meta, &acasa_domain::Plain).await
        } else {
            self.repo.execute(&id.to_string(), &command, &meta).await
        };
        let outcome = outcome.map_err(|e| match e {
            acasa_eventstore::CommandError::Claimed { owner, .. } => ApiError::Rejected {
                kind: acasa_domain::RejectionKind::AlreadyExists,
                message: format!("a counter with this name already exists: {owner}"),
            },
            e => e.into(),
        })?;
        if outcome.replayed {
            tracing::info!(counter_id = %outcome.id, position = outcome.position, "create replayed for a retried request id");
        } else {
            tracing::info!(counter_id = %outcome.id, position = outcome.position, "counter created");
        }
        Ok(pb::CreateCounterResponse { counter_id: outcome.id, position: outcome.position })
    }

    pub(crate) async fn increment(
        &self,
        principal: &Principal,
        req: &pb::IncrementCounterRequest,
    ) -> Result<pb::IncrementCounterResponse, ApiError> {
        let mut v = Violations::new();
        let meta = request::meta_of(principal, &mut v, req);
        let id = v.check("counter_id", validate::id(&req.counter_id));
        let amount = v.check("amount", Amount::parse(req.amount));
        let (Some(meta), Some(id), Some(amount)) = (meta, id, amount) else { return Err(v.into()) };
        let outcome = self.repo.execute(&id.to_string(), &CounterCommand::Increment { amount }, &meta).await?;
        let value = outcome
            .events
            .iter()
            .find_map(|e| match e {
                CounterEvent::Incremented { value, .. } => Some(*value),
                CounterEvent::Created { .. } => None,
            })
            .ok_or_else(|| ApiError::Internal("increment commit without an increment event".into()))?;
        Ok(pb::IncrementCounterResponse { value, position: outcome.position })
    }
}
