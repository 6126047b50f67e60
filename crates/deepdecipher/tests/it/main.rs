//! Integration tests of the `deepdecipher` binary: a real server on 127.0.0.1, real SQLite files
//! made by `synth`, and the CLI's commands. One test binary, so one link step covers them all.

mod api;
mod browser;
mod cli;
mod demo;
mod explain;
mod export;
mod http;
mod import;
mod n2g;
mod record;
mod relate;
mod schema;
mod server;
mod web;
