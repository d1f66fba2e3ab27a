//! The edge's validation of the demo's requests into domain values: every
//! bad field named.

use acasa_domain::Violations;
use acasa_proto::demo::v1 as pb;

use crate::domain::CounterName;

/// A new counter's name and upper bound (0: unbounded).
pub fn new_counter(v: &mut Violations, req: &pb::CreateCounterRequest) -> Option<(CounterName, i64)> {
    let name = v.check("name", CounterName::parse(&req.name));
    if req.limit < 0 {
        v.add("limit", "must not be negative (0 means unbounded)");
        return None;
    }
    Some((name?, req.limit))
}
