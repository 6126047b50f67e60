//! A fixed pool of read-only connections, so requests read in parallel.
//!
//! The original DeepDecipher sent every query through one connection thread,
//! which was its measured bottleneck. Here each blocking task checks out its
//! own connection; statements are cached per connection. A `std` mutex is
//! right: it is held only to pop or push a connection, never across IO.

use std::sync::{Condvar, Mutex, PoisonError};

use rusqlite::Connection;

pub(crate) struct ReadPool {
    idle: Mutex<Idle>,
    returned: Condvar,
}

struct Idle {
    connections: Vec<Connection>,
    /// Threads waiting for a connection: returning one signals the condvar only when this is
    /// non-zero, because `notify_one` is a syscall even with nobody waiting.
    n_waiting: usize,
}

impl ReadPool {
    pub(crate) fn new(connections: Vec<Connection>) -> Self {
        Self { idle: Mutex::new(Idle { connections, n_waiting: 0 }), returned: Condvar::new() }
    }

    /// Runs `f` on an idle connection, waiting for one when all are busy.
    pub(crate) fn with<T>(&self, f: impl FnOnce(&Connection) -> T) -> T {
        let conn = {
            let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
            loop {
                match idle.connections.pop() {
                    Some(conn) => break conn,
                    None => {
                        idle.n_waiting += 1;
                        idle = self.returned.wait(idle).unwrap_or_else(PoisonError::into_inner);
                        idle.n_waiting -= 1;
                    }
                }
            }
        };
        // The guard returns the connection even if `f` panics, so the pool never shrinks.
        let guard = Checkout { pool: self, conn: Some(conn) };
        f(guard.conn.as_ref().expect("connection is present until drop"))
    }
}

struct Checkout<'a> {
    pool: &'a ReadPool,
    conn: Option<Connection>,
}

impl Drop for Checkout<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            let mut idle = self.pool.idle.lock().unwrap_or_else(PoisonError::into_inner);
            idle.connections.push(conn);
            if idle.n_waiting > 0 {
                self.pool.returned.notify_one();
            }
        }
    }
}
