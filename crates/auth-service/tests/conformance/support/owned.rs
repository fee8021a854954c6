//! A server process one test owns (`redis-server`, `nats-server`) to stage outages without
//! touching the shared servers: started quietly, killed (a crash) or frozen and thawed with
//! signals (a hung server), and killed when dropped.

use std::process::{Child, Command, Stdio};

/// Whether `program --version` runs here. Under `CI` it must (the panic says how to install
/// it); otherwise `test` is skipped with a note.
pub fn installed(program: &str, test: &str, install: &str) -> bool {
    let found = Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but {program} cannot be run: {install}"
        );
        eprintln!("SKIPPED {test}: {program} cannot be run");
    }
    found
}

/// The running process, if any.
#[derive(Default)]
pub struct Owned {
    child: Option<Child>,
}

impl Owned {
    /// Spawns `command` with no stdio and returns its pid.
    pub fn spawn(&mut self, command: &mut Command) -> u32 {
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| panic!("run {command:?}: {error}"));
        let pid = child.id();
        self.child = Some(child);
        pid
    }

    /// Whether the process has exited (e.g. it could not bind its port).
    pub fn exited(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|child| child.try_wait().ok().flatten().is_some())
    }

    /// Kills the process (SIGKILL: a crash, no goodbye to clients; works on a frozen one too)
    /// and waits for its exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Freezes the process (SIGSTOP): connections stay open but nothing answers.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Lets a paused process answer again (SIGCONT).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("the server is running").id();
        let status = Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill {signal} {pid} failed");
    }
}

impl Drop for Owned {
    fn drop(&mut self) {
        self.stop();
    }
}
