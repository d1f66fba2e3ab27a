//! acasa-content's integration tests, one binary: delivery against real
//! servers started by `acasa-testkit`.

mod smtp;
