//! The demo city and the case simulator.
//!
//! [`city::nantong`] builds 南通's reference data (real division codes and names, departments, a matter
//! catalog, users for every role); [`walk`] carries simulated reports through the closed loop with the
//! domain's own `decide`, so every simulated history is one the platform could really have produced.

pub mod city;
pub mod map;
pub mod rng;
pub mod walk;
