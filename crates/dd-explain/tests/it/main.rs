//! Integration tests of `dd-explain` over real HTTP against the fake Chat Completions server
//! (`dd_explain::testing`): the endpoint client (`endpoint.rs`) and the chat simulator
//! (`chat_simulator.rs`).

mod chat_simulator;
mod endpoint;
