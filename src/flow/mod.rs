//! Task definitions: loading the shapes real files come in, compiling them into validated flows
//! with every diagnostic at once, and the expression language their parameters use.

mod analysis;
pub mod compile;
#[cfg(test)]
mod compile_tests;
pub mod expr;
pub mod inputs;
pub mod load;
pub mod model;
