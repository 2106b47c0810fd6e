//! Tests of the decoder API: line preparation, format detection, fallbacks.
