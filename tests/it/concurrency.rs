//! Tests: concurrency (being written).
