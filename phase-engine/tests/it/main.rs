//! Integration tests of the phase engine: golden vectors, properties and scenarios on a virtual
//! clock (the `test-utils` harness).

mod canonical;
mod checkpoint;
mod golden;
mod properties;
mod scenarios;
