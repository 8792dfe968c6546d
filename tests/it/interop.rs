//! Tests: interop (being written).
