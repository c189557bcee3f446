//! The Lua scripts (`src/lua/`) and how they are called: `EVALSHA`, and on
//! `NOSCRIPT` (a restarted or `SCRIPT FLUSH`ed server) `SCRIPT LOAD` and
//! once more. Each script touches the keys of one channel only, so it runs
//! on one Redis Cluster slot.

use redis::aio::MultiplexedConnection;
use redis::{Cmd, ErrorKind, FromRedisValue, Pipeline, RedisResult, Script};

/// One of our scripts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lua {
    Publish,
    History,
    Presence,
}

/// The scripts' sources and SHA-1 digests.
pub(crate) struct Scripts {
    publish: Script,
    history: Script,
    presence: Script,
}

impl Scripts {
    pub(crate) fn new() -> Scripts {
        Scripts {
            publish: Script::new(include_str!("lua/publish.lua")),
            history: Script::new(include_str!("lua/history.lua")),
            presence: Script::new(include_str!("lua/presence.lua")),
        }
    }

    fn script(&self, lua: Lua) -> &Script {
        match lua {
            Lua::Publish => &self.publish,
            Lua::History => &self.history,
            Lua::Presence => &self.presence,
        }
    }

    /// An `EVALSHA` command for `lua` with `keys`; the caller appends the
    /// arguments.
    pub(crate) fn call(&self, lua: Lua, keys: &[&str]) -> Cmd {
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg(self.script(lua).get_hash()).arg(keys.len());
        for key in keys {
            cmd.arg(*key);
        }
        cmd
    }

    /// Loads every script (after connecting, so `EVALSHA` finds them).
    pub(crate) async fn load(&self, conn: &mut MultiplexedConnection) -> RedisResult<()> {
        let mut pipe = redis::pipe();
        for lua in [Lua::Publish, Lua::History, Lua::Presence] {
            let source = include_source(lua);
            pipe.cmd("SCRIPT").arg("LOAD").arg(source).ignore();
        }
        pipe.query_async(conn).await
    }

    /// Runs `cmd` (made by [`call`](Scripts::call)), loading the scripts
    /// and retrying once if the server does not know them.
    pub(crate) async fn run<T: FromRedisValue>(
        &self,
        conn: &mut MultiplexedConnection,
        cmd: &Cmd,
    ) -> RedisResult<T> {
        match cmd.query_async(conn).await {
            Err(e) if e.kind() == ErrorKind::NoScriptError => {
                self.load(conn).await?;
                cmd.query_async(conn).await
            }
            other => other,
        }
    }

    /// Runs a pipeline of script calls, with the same retry.
    pub(crate) async fn run_pipeline<T: FromRedisValue>(
        &self,
        conn: &mut MultiplexedConnection,
        pipe: &Pipeline,
    ) -> RedisResult<T> {
        match pipe.query_async(conn).await {
            Err(e) if e.kind() == ErrorKind::NoScriptError => {
                self.load(conn).await?;
                pipe.query_async(conn).await
            }
            other => other,
        }
    }
}

fn include_source(lua: Lua) -> &'static str {
    match lua {
        Lua::Publish => include_str!("lua/publish.lua"),
        Lua::History => include_str!("lua/history.lua"),
        Lua::Presence => include_str!("lua/presence.lua"),
    }
}
