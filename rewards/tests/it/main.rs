//! Integration tests of `rewards`: engine-driven scenarios, properties, golden vectors.

mod golden;
mod props;
mod scenarios;
