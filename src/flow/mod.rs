//! Task definitions: loading the shapes real files come in, compiling them into validated flows
//! with every diagnostic at once, and the expression language their parameters use.

pub mod expr;
