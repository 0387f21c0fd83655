//! Settlement benchmarks (filled in below).
fn main() {}
