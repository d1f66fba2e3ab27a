//! The demo's commands: validate the request into domain values, let the
//! counter decide, append (with its name's claim) through the command loop.

use acasa_domain::{Plain, Violations};
use acasa_eventstore::Step;
use acasa_proto::demo::v1 as pb;
use acasa_runtime::{ApiError, Principal, request};

use crate::{
    domain::{Amount, CounterCommand, CounterEvent},
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
        let new = validate::new_counter(&mut v, req);
        v.clone().into_result()?;
        let (Some(meta), Some((name, limit))) = (meta, new) else { return Err(v.into()) };

        // A retry addresses the counter its first attempt created.
        let (id, fresh) = self.repo.creation_id(&meta).await?;
        let command = CounterCommand::Create { id, name, limit };
        let step = Step { id: id.to_string(), command: &command, codec: &Plain, new: fresh };
        let outcome = self.repo.execute_step(step, &meta).await.map_err(|e| match e {
            acasa_eventstore::CommandError::Claimed { owner, .. } => ApiError::Rejected {
                kind: acasa_domain::RejectionKind::AlreadyExists,
                message: format!("a counter with this name already exists: {owner}"),
                rule: None,
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
        let id = v.id("counter_id", &req.counter_id);
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
