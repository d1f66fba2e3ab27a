//! The content events as the log stores them (`events.proto`). Being written.
