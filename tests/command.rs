//! Running commands with real child processes: outcomes, deadlines, process groups, reaping,
//! environment scrubbing and detached start commands.

mod common;

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use common::child::{is_gone, state_of};
use common::fixture::PATIENCE;
use common::wait_until;
use monitor_service::command::{
    CommandFailure, CommandOutcome, Program, run, run_until_success, spawn_detached,
};

const DEADLINE: Duration = Duration::from_secs(5);

/// Awaits a command that must return well before its children's `sleep 60` ends: a `run` that
/// waited for them (or for the pipe they hold) would still be waiting at [`PATIENCE`].
async fn returns_before_its_children_end<T>(command: impl Future<Output = T>) -> T {
    tokio::time::timeout(PATIENCE, command)
        .await
        .unwrap_or_else(|_| panic!("the command still ran after {PATIENCE:?}"))
}

fn shell<'a>(text: &'a str, name: &'a str) -> Program<'a> {
    Program::Shell { text, name }
}

fn temp_dir() -> tempfile::TempDir {
    tempfile::tempdir().expect("a temporary directory")
}

fn path_text(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 path")
}

/// Reads a PID that a shell wrote to `file`, waiting for it to appear.
async fn read_pid(file: &Path) -> i32 {
    common::child::read_pid(file, DEADLINE).await
}

/// Waits until the process `pid` is gone; `who` names it in the failure.
async fn wait_gone(pid: i32, who: &str) {
    let what = format!("{who} {pid} is gone (it survived)");
    wait_until(DEADLINE, &what, || async move { is_gone(pid) }).await
}

#[tokio::test]
async fn a_command_that_exits_zero_succeeds() {
    assert_eq!(
        run(shell("true", "x"), DEADLINE).await,
        CommandOutcome::Success
    );
    let args = ["-c", "exit 0"];
    let exec = Program::Exec {
        program: "sh",
        args: &args,
    };
    assert_eq!(run(exec, DEADLINE).await, CommandOutcome::Success);
}

#[tokio::test]
async fn a_failure_carries_the_exit_code_and_the_first_stderr_line() {
    let outcome = run(
        shell("echo >&2; echo 'it broke' >&2; echo more >&2; exit 3", "x"),
        DEADLINE,
    )
    .await;
    let expected = CommandFailure::Exit {
        code: 3,
        stderr: "it broke".into(),
    };
    assert_eq!(outcome, CommandOutcome::Failed(expected));
    assert_eq!(outcome.to_string(), "exit 3: it broke");
}

#[tokio::test]
async fn a_command_killed_by_a_signal_names_the_signal() {
    let outcome = run(shell("kill -SEGV $$", "x"), DEADLINE).await;
    assert_eq!(outcome.to_string(), "killed by SIGSEGV");
}

#[tokio::test]
async fn a_missing_command_is_reported_as_not_found() {
    let outcome = run(shell("no-such-command-xyz %s", "x"), DEADLINE).await;
    assert_eq!(
        outcome,
        CommandOutcome::Failed(CommandFailure::NotFound("no-such-command-xyz".into()))
    );
    let missing = Program::Exec {
        program: "no-such-program-xyz",
        args: &[],
    };
    let outcome = run(missing, DEADLINE).await;
    assert_eq!(
        outcome.to_string(),
        "command not found: no-such-program-xyz"
    );
}

#[tokio::test]
async fn the_name_reaches_the_command_as_its_first_argument() {
    let dir = temp_dir();
    let out = dir.path().join("out");
    let text = format!("echo %s > {}", path_text(&out));
    assert_eq!(
        run(shell(&text, "my name"), DEADLINE).await,
        CommandOutcome::Success
    );
    assert_eq!(
        std::fs::read_to_string(&out).expect("the output file"),
        "my name\n"
    );
}

#[tokio::test]
async fn names_holding_shell_text_never_execute_anything() {
    let dir = temp_dir();
    let file = dir.path().join("FILE");
    let file = path_text(&file);
    let names = [
        format!("x; touch {file}"),
        format!("$(touch {file})"),
        format!("`touch {file}`"),
        format!("-x || touch {file}"),
        format!("\"; touch {file}; \""),
        format!("' ; touch {file} ; '"),
    ];
    for name in &names {
        // `test -n` sees the name as one word; unquoted expansion would also be split only.
        for text in ["test -n %s", "echo %s >/dev/null", "[ %s = x ] || true"] {
            let outcome = run(shell(text, name), DEADLINE).await;
            assert_eq!(outcome, CommandOutcome::Success, "{text} with {name}");
        }
    }
    assert!(
        !Path::new(file).exists(),
        "a name was executed as shell text"
    );
}

#[tokio::test]
async fn health_check_that_hangs_times_out_and_kills_its_group() {
    let dir = temp_dir();
    let pid_file = dir.path().join("pid");
    let text = format!("sleep 60 & echo $! > {}; sleep 60", path_text(&pid_file));
    let outcome =
        returns_before_its_children_end(run(shell(&text, "x"), Duration::from_millis(300))).await;
    assert_eq!(outcome.to_string(), "timed out after 300ms");
    let grandchild = read_pid(&pid_file).await;
    wait_gone(grandchild, "grandchild").await;
}

#[tokio::test]
async fn a_grandchild_holding_stderr_open_does_not_delay_an_exited_command() {
    let dir = temp_dir();
    let pid_file = dir.path().join("pid");
    let child_file = dir.path().join("child");
    // The background sleep inherits stderr and keeps the pipe open after the shell exits.
    let text = format!(
        "echo $$ > {}; sleep 60 & echo $! > {}; echo 'left running' >&2; exit 4",
        path_text(&child_file),
        path_text(&pid_file)
    );
    // A deadline longer than the grandchild's sleep: waiting for its pipe would not time out.
    let outcome =
        returns_before_its_children_end(run(shell(&text, "x"), Duration::from_secs(120))).await;
    assert_eq!(outcome.to_string(), "exit 4: left running");
    let grandchild = read_pid(&pid_file).await;
    wait_gone(grandchild, "grandchild").await;
    // The shell itself was reaped by `run`: no zombie is left behind.
    let child = read_pid(&child_file).await;
    assert_eq!(state_of(child), None, "the command {child} was not reaped");
}

#[tokio::test]
async fn a_hanging_command_whose_grandchild_holds_stderr_returns_at_the_deadline() {
    let dir = temp_dir();
    let pid_file = dir.path().join("pid");
    let child_file = dir.path().join("child");
    let text = format!(
        "echo $$ > {}; (sleep 60 & echo $! > {}); exec sleep 60",
        path_text(&child_file),
        path_text(&pid_file)
    );
    let outcome =
        returns_before_its_children_end(run(shell(&text, "x"), Duration::from_millis(300))).await;
    assert_eq!(
        outcome,
        CommandOutcome::Failed(CommandFailure::Timeout(Duration::from_millis(300)))
    );
    let grandchild = read_pid(&pid_file).await;
    wait_gone(grandchild, "grandchild").await;
    let child = read_pid(&child_file).await;
    assert_eq!(state_of(child), None, "the command {child} was not reaped");
}

#[tokio::test]
async fn a_command_abandoned_by_its_caller_is_killed_with_its_group() {
    let dir = temp_dir();
    let pid_file = dir.path().join("pid");
    let text = format!("sleep 60 & echo $! > {}; sleep 60", path_text(&pid_file));
    let command = run(shell(&text, "x"), DEADLINE);
    let gave_up = tokio::time::timeout(Duration::from_millis(300), command).await;
    assert!(gave_up.is_err(), "the command finished: {gave_up:?}");
    let grandchild = read_pid(&pid_file).await;
    wait_gone(grandchild, "grandchild").await;
}

/// Sets secrets and systemd variables in this test process. Other tests running at the same
/// time see them too, which is harmless: every child environment is scrubbed.
#[allow(unsafe_code)]
fn set_inherited_secrets() {
    // SAFETY: the tests in this binary read the environment only through std (whose Command
    // takes the environment lock) and call no C code that reads it while this runs.
    unsafe {
        std::env::set_var("NOTIFY_SOCKET", "/run/systemd/notify");
        std::env::set_var("WATCHDOG_USEC", "1000000");
        std::env::set_var("MONITOR_DB_PASSWORD", "hunter2");
        std::env::set_var("MONITOR_TEST_KEPT", "kept");
    }
}

fn scrubbed(environment: &str) {
    assert!(
        environment.contains("MONITOR_TEST_KEPT=kept"),
        "{environment}"
    );
    for secret in [
        "NOTIFY_SOCKET",
        "WATCHDOG_USEC",
        "MONITOR_DB_PASSWORD",
        "hunter2",
    ] {
        assert!(!environment.contains(secret), "{secret} reached a child");
    }
}

#[tokio::test]
async fn commands_never_see_the_notify_socket_or_the_database_password() {
    set_inherited_secrets();
    let dir = temp_dir();
    let out = dir.path().join("env");
    let text = format!("env > {}", path_text(&out));
    assert_eq!(
        run(shell(&text, "x"), DEADLINE).await,
        CommandOutcome::Success
    );
    scrubbed(&std::fs::read_to_string(&out).expect("the output file"));
}

#[tokio::test]
async fn run_until_success_retries_until_the_check_passes() {
    let dir = temp_dir();
    let file = dir.path().join("ready");
    // The first attempt fails and makes the next one pass.
    let text = format!("test -e {0} || {{ touch {0}; exit 1; }}", path_text(&file));
    let check = run_until_success(shell(&text, "x"), DEADLINE).await;
    assert_eq!(check.outcome, CommandOutcome::Success);
    assert!(check.attempts > 1, "succeeded at once: {check:?}");
}

#[tokio::test]
async fn run_until_success_gives_the_last_failure_at_the_deadline() {
    let check = run_until_success(
        shell("echo nope >&2; exit 1", "x"),
        Duration::from_millis(300),
    )
    .await;
    assert_eq!(check.outcome.to_string(), "exit 1: nope");
    assert!(check.attempts > 1, "{check:?}");

    let check = returns_before_its_children_end(run_until_success(
        shell("sleep 60", "x"),
        Duration::from_millis(300),
    ))
    .await;
    assert_eq!(check.outcome.to_string(), "timed out after 300ms");
}

#[tokio::test]
async fn run_until_success_does_not_retry_a_missing_command() {
    let check = run_until_success(shell("no-such-command-xyz", "x"), DEADLINE).await;
    assert_eq!(check.attempts, 1);
    assert_eq!(
        check.outcome.to_string(),
        "command not found: no-such-command-xyz"
    );
}

fn open_fds(pid: u32) -> Vec<String> {
    let mut fds: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("the fd directory")
        .map(|entry| {
            entry
                .expect("an fd")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    fds.sort();
    fds
}

fn session_of(pid: u32) -> i32 {
    let pid = nix::unistd::Pid::from_raw(i32::try_from(pid).expect("a PID fits i32"));
    nix::unistd::getsid(Some(pid)).expect("a session").as_raw()
}

fn fd_targets(pid: u32) -> Vec<String> {
    ["0", "1", "2"]
        .iter()
        .map(|fd| {
            let target = std::fs::read_link(format!("/proc/{pid}/fd/{fd}")).expect("an fd link");
            target.to_string_lossy().into_owned()
        })
        .collect()
}

#[tokio::test]
async fn a_detached_command_runs_alone_in_its_own_session_and_outlives_its_child_handle() {
    set_inherited_secrets();
    let dir = temp_dir();
    let [env, ready, go, alive] = ["env", "ready", "go", "alive"].map(|name| dir.path().join(name));
    // A file open in this process must not leak into the child.
    let _held = std::fs::File::open(dir.path()).expect("an open file");
    let text = format!(
        "env > {}; touch {}; while [ ! -e {} ]; do sleep 0.01; done; touch {}; exec sleep 60",
        path_text(&env),
        path_text(&ready),
        path_text(&go),
        path_text(&alive)
    );
    let child = spawn_detached(&text, "x").expect("spawned");
    let pid = child.id().expect("a running child");
    let _cleanup = KillSession(pid);
    wait_until(DEADLINE, "the command is ready", || async {
        ready.exists()
    })
    .await;
    assert_eq!(open_fds(pid), ["0", "1", "2"]);
    assert_eq!(fd_targets(pid), ["/dev/null", "/dev/null", "/dev/null"]);
    assert_eq!(session_of(pid), i32::try_from(pid).expect("a PID fits i32"));
    scrubbed(&std::fs::read_to_string(&env).expect("the env file"));

    drop(child);
    std::fs::write(&go, "").expect("the go file");
    wait_until(
        DEADLINE,
        "the command still runs after its Child is dropped (dropping it killed it)",
        || async { alive.exists() },
    )
    .await;
    assert!(!is_gone(i32::try_from(pid).expect("a PID fits i32")));
}

/// Kills a detached command's session (its process group too) when the test ends, passed or not.
struct KillSession(u32);

impl Drop for KillSession {
    fn drop(&mut self) {
        let leader = nix::unistd::Pid::from_raw(i32::try_from(self.0).expect("a PID fits i32"));
        let _ = nix::sys::signal::killpg(leader, nix::sys::signal::Signal::SIGKILL);
    }
}

#[tokio::test]
async fn a_detached_command_that_exits_early_can_be_awaited() {
    let mut child = spawn_detached("exit 7", "x").expect("spawned");
    let status = tokio::time::timeout(DEADLINE, child.wait())
        .await
        .expect("exited in time")
        .expect("waited");
    assert_eq!(status.code(), Some(7));
}
