//! An OpenAI-compatible Chat Completions client (see the module doc in lib.rs).
