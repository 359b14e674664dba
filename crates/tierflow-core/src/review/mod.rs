//! Review tools: what a change to the intent does ([`diff`]) and pictures of the intent
//! ([`diagram`]).
//!
//! Both are built on the rest of the core and add no policy logic of their own: a diff plans
//! both versions with the one planner ([`crate::plan::plan`]), renders them with the one set
//! of renderers and simulates them with the one engine, on the representative endpoints of
//! [`crate::verify::endpoints`]; a diagram is drawn from the validated model (`explain`) or
//! from the connections a diff found. Text, Markdown and JSON are the CLI's business; this
//! module returns data and, for diagrams, the Mermaid and Graphviz text.

pub mod diagram;
pub mod diff;
