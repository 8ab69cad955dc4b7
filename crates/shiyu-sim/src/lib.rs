//! The demo city and the case simulator.
//!
//! [`city::nantong`] builds 南通's reference data (real division codes and names, departments, the matter
//! catalog of [`catalog`], users for every role) and [`map`] draws its grids; [`history`] writes case
//! histories through the domain's own `decide` and `apply`, so every simulated history is one the platform
//! could really have produced, and [`simulate`] bulk-loads them into a store.

pub mod catalog;
pub mod city;
pub mod history;
pub mod map;
pub mod rng;
pub mod simulate;
