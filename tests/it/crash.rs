//! Tests: crash (being written).
