//! The demo's events as the log stores them: `acasa.demo.v1` event messages
//! (`proto/acasa/demo/v1/demo.proto`), converted from and to the domain's
//! [`CounterEvent`]. The only place the service's events meet prost.

use acasa_domain::{DecodeError, EncodedEvent, EventCodec};
use acasa_proto::{Message as _, demo::v1 as pb};
use uuid::Uuid;

use crate::domain::CounterEvent;

const CREATED: &str = "acasa.demo.v1.CounterCreated";
const INCREMENTED: &str = "acasa.demo.v1.CounterIncremented";

impl EventCodec for CounterEvent {
    fn encode(&self) -> EncodedEvent {
        match self {
            Self::Created { id, name, limit } => EncodedEvent {
                type_name: CREATED.into(),
                schema_version: 1,
                data: pb::CounterCreated { counter_id: id.to_string(), name: name.clone(), limit: *limit }
                    .encode_to_vec(),
            },
            Self::Incremented { amount, value } => EncodedEvent {
                type_name: INCREMENTED.into(),
                schema_version: 1,
                data: pb::CounterIncremented { amount: *amount, value: *value }.encode_to_vec(),
            },
        }
    }

    fn decode(e: &EncodedEvent) -> Result<Self, DecodeError> {
        match (e.type_name.as_str(), e.schema_version) {
            (CREATED, 1) => {
                let m = pb::CounterCreated::decode(e.data.as_slice())
                    .map_err(|err| DecodeError::new(e, err.to_string()))?;
                let id = Uuid::parse_str(&m.counter_id).map_err(|_| DecodeError::new(e, "counter_id is not a uuid"))?;
                Ok(Self::Created { id, name: m.name, limit: m.limit })
            }
            (INCREMENTED, 1) => {
                let m = pb::CounterIncremented::decode(e.data.as_slice())
                    .map_err(|err| DecodeError::new(e, err.to_string()))?;
                Ok(Self::Incremented { amount: m.amount, value: m.value })
            }
            _ => Err(DecodeError::new(e, "unknown event type or version")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_and_unknown_ones_are_refused() {
        for e in [
            CounterEvent::Created { id: Uuid::nil(), name: "n".into(), limit: 3 },
            CounterEvent::Incremented { amount: 1, value: 4 },
        ] {
            assert_eq!(CounterEvent::decode(&e.encode()), Ok(e));
        }
        let unknown = EncodedEvent { type_name: "acasa.demo.v1.Nope".into(), schema_version: 1, data: vec![] };
        assert!(CounterEvent::decode(&unknown).is_err());
        let garbage = EncodedEvent { type_name: CREATED.into(), schema_version: 1, data: vec![0xff, 0xff] };
        assert!(CounterEvent::decode(&garbage).is_err());
    }
}
