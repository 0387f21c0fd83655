//! Wire types, apart from any transport.

mod beacon;
mod events;
mod primitives;

pub use beacon::*;
pub use events::*;
pub use primitives::*;
