//! Installation: `scripts/install.sh` staged into a temporary root (`--prefix`), the systemd
//! unit, and the RPM that `cargo generate-rpm` makes from `[package.metadata.generate-rpm]`.
//!
//! Everything here uses the debug binary that `cargo test` has just built, so no release build
//! is needed. Needs `rpm` (Debian's package) and `cargo-generate-rpm` (`cargo install`), which
//! `scripts/test.sh` installs; `systemd-analyze verify` runs where systemd-analyze exists.

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use tempfile::TempDir;

/// The files install.sh puts in place, as seen on the installed system, with their modes.
const INSTALLED: &[(&str, u32)] = &[
    ("/opt/monitor_service/monitor_service", 0o755),
    ("/opt/monitor_service/config.ini", 0o600),
    (
        "/opt/monitor_service/migrations/0001_original_tables.sql",
        0o644,
    ),
    ("/opt/monitor_service/scripts/stats_queries.sql", 0o644),
    ("/etc/systemd/system/monitor_service.service", 0o644),
    ("/usr/share/man/man8/monitor_service.8", 0o644),
];

const BIN_LINK: &str = "/usr/bin/monitor_service";
const CONFIG: &str = "/opt/monitor_service/config.ini";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_monitor_service"))
}

/// `path` of the installed system, under the staging root.
fn staged(root: &Path, path: &str) -> PathBuf {
    root.join(path.trim_start_matches('/'))
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Runs scripts/install.sh staged into `root`, with the debug binary, and expects success.
fn install(root: &Path, arguments: &[&str]) -> String {
    let output = Command::new(repo().join("scripts/install.sh"))
        .arg("--prefix")
        .arg(root)
        .arg("--binary")
        .arg(binary())
        .args(arguments)
        .env_remove("DESTDIR")
        .output()
        .expect("scripts/install.sh runs");
    let said = text(&output);
    assert!(
        output.status.success(),
        "install.sh {arguments:?} failed ({}):\n{said}",
        output.status
    );
    said
}

fn staging_root() -> TempDir {
    tempfile::tempdir().expect("a temporary directory")
}

/// What a change to any file would alter: type, mode, owner, size, inode, modification time
/// and link target, for every path under `root`.
fn snapshot(root: &Path) -> BTreeMap<PathBuf, String> {
    let mut entries = BTreeMap::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(directory) = pending.pop() {
        for entry in std::fs::read_dir(&directory).expect("a staged directory is readable") {
            let path = entry.expect("a directory entry").path();
            let meta = std::fs::symlink_metadata(&path).expect("metadata of a staged file");
            let target = std::fs::read_link(&path).ok();
            entries.insert(
                path.clone(),
                format!(
                    "{:o} {}:{} {} {} {}.{} {target:?}",
                    meta.mode(),
                    meta.uid(),
                    meta.gid(),
                    meta.len(),
                    meta.ino(),
                    meta.mtime(),
                    meta.mtime_nsec()
                ),
            );
            if meta.is_dir() {
                pending.push(path);
            }
        }
    }
    entries
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|error| panic!("{}: {error}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

#[test]
fn installing_puts_every_file_in_place_with_its_mode() {
    let root = staging_root();
    install(root.path(), &[]);
    for (path, expected) in INSTALLED {
        let file = staged(root.path(), path);
        assert_eq!(mode(&file), *expected, "mode of {path}");
        if nix::unistd::geteuid().is_root() {
            let meta = std::fs::metadata(&file).expect("metadata");
            assert_eq!((meta.uid(), meta.gid()), (0, 0), "owner of {path}");
        }
    }
    assert_eq!(
        std::fs::read(staged(root.path(), CONFIG)).expect("config.ini"),
        std::fs::read(repo().join("config.ini")).expect("the reference config.ini"),
        "a first install ships the reference config.ini"
    );
    let migrations = std::fs::read_dir(repo().join("migrations")).expect("migrations/");
    for migration in migrations {
        let name = migration.expect("a migration").file_name();
        let installed = staged(root.path(), "/opt/monitor_service/migrations").join(&name);
        assert!(installed.is_file(), "{} is installed", installed.display());
    }
    if repo().join("scripts/test_alarm.sh").exists() {
        let menu = staged(root.path(), "/opt/monitor_service/scripts/test_alarm.sh");
        assert_eq!(mode(&menu), 0o755, "mode of test_alarm.sh");
    }
    assert_eq!(
        std::fs::read_link(staged(root.path(), BIN_LINK)).expect("the /usr/bin link"),
        Path::new("/opt/monitor_service/monitor_service")
    );
}

#[test]
fn installing_again_changes_nothing_and_never_overwrites_an_edited_config() {
    let root = staging_root();
    install(root.path(), &[]);
    let first = snapshot(root.path());
    let said = install(root.path(), &[]);
    assert_eq!(
        snapshot(root.path()),
        first,
        "the second run changed files:\n{said}"
    );
    assert!(
        !said.contains("installed"),
        "the second run installed:\n{said}"
    );

    let config = staged(root.path(), CONFIG);
    let mut edited = std::fs::read_to_string(&config).expect("config.ini");
    edited = edited.replace("check_interval = 300", "check_interval = 7");
    edited.push_str("\n; edited by the operator\n");
    std::fs::write(&config, &edited).expect("config.ini is writable");
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o640)).expect("chmod");

    let said = install(root.path(), &[]);
    assert_eq!(
        std::fs::read_to_string(&config).expect("config.ini"),
        edited,
        "install.sh overwrote the edited config.ini:\n{said}"
    );
    assert_eq!(
        mode(&config),
        0o600,
        "a config.ini readable by others is tightened"
    );
    let shipped = staged(root.path(), "/opt/monitor_service/config.ini.new");
    assert_eq!(
        std::fs::read(&shipped).expect("config.ini.new holds the shipped config"),
        std::fs::read(repo().join("config.ini")).expect("the reference config.ini")
    );
    assert_eq!(mode(&shipped), 0o600);
}

#[test]
fn a_dry_run_touches_nothing() {
    let root = staging_root();
    let said = install(root.path(), &["--dry-run"]);
    assert_eq!(
        snapshot(root.path()),
        BTreeMap::new(),
        "a dry run into an empty root wrote files:\n{said}"
    );
    assert!(said.contains("would install"), "{said}");

    install(root.path(), &[]);
    std::fs::write(staged(root.path(), CONFIG), "; edited\n").expect("config.ini is writable");
    let before = snapshot(root.path());
    for arguments in [
        &["--dry-run"][..],
        &["--uninstall", "--dry-run"],
        &["--uninstall", "--purge", "--dry-run"],
    ] {
        let said = install(root.path(), arguments);
        assert_eq!(
            snapshot(root.path()),
            before,
            "{arguments:?} changed files:\n{said}"
        );
        assert!(said.contains("nothing was changed"), "{said}");
    }
}

#[test]
fn uninstalling_removes_the_files_but_keeps_config_ini_until_purged() {
    let root = staging_root();
    install(root.path(), &[]);
    let config = staged(root.path(), CONFIG);
    std::fs::write(&config, "; kept\n").expect("config.ini is writable");

    install(root.path(), &["--uninstall"]);
    for (path, _) in INSTALLED.iter().filter(|(path, _)| *path != CONFIG) {
        assert!(
            !staged(root.path(), path).exists(),
            "{path} is left after --uninstall"
        );
    }
    assert!(
        std::fs::symlink_metadata(staged(root.path(), BIN_LINK)).is_err(),
        "{BIN_LINK} is left after --uninstall"
    );
    assert_eq!(
        std::fs::read_to_string(&config).expect("config.ini is kept"),
        "; kept\n"
    );

    install(root.path(), &["--uninstall", "--purge"]);
    assert!(!config.exists(), "config.ini is left after --purge");
    assert!(
        !staged(root.path(), "/opt/monitor_service").exists(),
        "/opt/monitor_service is left after --purge"
    );
}

#[test]
fn install_sh_refuses_arguments_it_does_not_know() {
    for arguments in [&["--bogus"][..], &["--purge"]] {
        let output = Command::new(repo().join("scripts/install.sh"))
            .args(arguments)
            .output()
            .expect("scripts/install.sh runs");
        assert_eq!(
            output.status.code(),
            Some(64),
            "{arguments:?}: {}",
            text(&output)
        );
    }
}

/// The settings of the unit's [Service] section (the last value of each key).
fn unit_settings() -> BTreeMap<String, String> {
    let unit = std::fs::read_to_string(repo().join("monitor_service.service")).expect("the unit");
    unit.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.split_once('='))
        .map(|(key, value)| (key.trim().to_owned(), value.trim().to_owned()))
        .collect()
}

#[test]
fn the_unit_is_a_watched_notify_service_that_survives_its_own_restart() {
    let unit = unit_settings();
    let setting = |key: &str| unit.get(key).map(String::as_str).unwrap_or_default();
    assert_eq!(setting("Type"), "notify");
    assert_eq!(
        setting("ExecStart"),
        "/opt/monitor_service/monitor_service -c /opt/monitor_service/config.ini run"
    );
    assert_eq!(setting("ExecReload"), "/bin/kill -HUP $MAINPID");
    assert_eq!(setting("Restart"), "on-failure");
    assert!(
        setting("RestartPreventExitStatus")
            .split_whitespace()
            .any(|code| code == "78"),
        "a bad configuration (78) must not be restarted in a loop"
    );
    assert_eq!(
        setting("KillMode"),
        "process",
        "respawned processes must outlive the unit"
    );
    let watchdog: u32 = setting("WatchdogSec")
        .parse()
        .expect("WatchdogSec in seconds");
    assert!(watchdog > 0, "the watchdog is on");
    // TimeoutStopSec must leave the running restarts their shutdown_grace.
    let config = std::fs::read_to_string(repo().join("config.ini")).expect("config.ini");
    let grace: f64 = config
        .lines()
        .find_map(|line| line.strip_prefix("shutdown_grace"))
        .and_then(|rest| rest.trim_start().strip_prefix('='))
        .expect("config.ini sets shutdown_grace")
        .trim()
        .parse()
        .expect("shutdown_grace is a number");
    let stop: f64 = setting("TimeoutStopSec")
        .parse()
        .expect("TimeoutStopSec in seconds");
    assert!(
        stop > grace,
        "TimeoutStopSec={stop} must exceed shutdown_grace = {grace}"
    );
}

#[test]
fn systemd_analyze_verify_finds_nothing_wrong_with_the_installed_unit() {
    let Ok(version) = Command::new("systemd-analyze").arg("--version").output() else {
        eprintln!("systemd-analyze is not installed: the unit is not verified");
        return;
    };
    assert!(
        version.status.success(),
        "systemd-analyze --version: {}",
        text(&version)
    );
    let root = staging_root();
    install(root.path(), &[]);
    // verify --root looks for everything under the root: the binaries the unit runs (the staged
    // one, and kill for ExecReload) and the units it depends on (sysinit.target...), copied from
    // this machine. The man page of Documentation= is looked up in the staged one.
    let units = Path::new("/usr/lib/systemd/system");
    let staged_units = staged(root.path(), "/usr/lib/systemd/system");
    std::fs::create_dir_all(&staged_units).expect("mkdir usr/lib/systemd/system");
    for entry in std::fs::read_dir(units).expect("/usr/lib/systemd/system is readable") {
        let path = entry.expect("a unit").path();
        if path.is_file() {
            let name = path.file_name().expect("a unit has a name");
            std::fs::copy(&path, staged_units.join(name)).expect("copy a unit");
        }
    }
    std::fs::create_dir_all(staged(root.path(), "/bin")).expect("mkdir bin");
    let kill = ["/bin/kill", "/usr/bin/kill"]
        .into_iter()
        .find(|path| Path::new(path).exists())
        .expect("kill(1) is installed");
    std::fs::copy(kill, staged(root.path(), "/bin/kill")).expect("copy kill");

    let output = Command::new("systemd-analyze")
        .arg("verify")
        .arg(format!("--root={}", root.path().display()))
        .arg("/etc/systemd/system/monitor_service.service")
        .env("MANPATH", staged(root.path(), "/usr/share/man"))
        .output()
        .expect("systemd-analyze verify runs");
    let said = text(&output);
    assert!(
        output.status.success() && said.trim().is_empty(),
        "systemd-analyze verify ({}):\n{said}",
        output.status
    );
}

/// The RPM of the debug binary, built once per run of this file: `cargo generate-rpm` with the
/// profile and target directory this test was built with, uncompressed to keep it quick. It is
/// the package scripts/build-rpm.sh makes, but for the binary.
fn built_rpm() -> &'static Path {
    static RPM: OnceLock<PathBuf> = OnceLock::new();
    RPM.get_or_init(build_rpm)
}

fn build_rpm() -> PathBuf {
    let profile_dir = binary()
        .parent()
        .expect("the binary is in a profile directory");
    let target_dir = profile_dir
        .parent()
        .expect("the profile is in the target directory");
    let profile = match profile_dir.file_name().and_then(|name| name.to_str()) {
        Some("debug") => "dev",
        Some(other) => other,
        None => panic!("odd binary path {}", binary().display()),
    };
    let rpm = Path::new(env!("CARGO_TARGET_TMPDIR")).join("monitor_service-test.rpm");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .current_dir(repo())
        .args([
            "generate-rpm",
            "--profile",
            profile,
            "--payload-compress",
            "none",
        ])
        .arg("--target-dir")
        .arg(target_dir)
        .arg("-o")
        .arg(&rpm)
        .output()
        .expect("cargo runs");
    assert!(
        output.status.success(),
        "cargo generate-rpm failed (cargo install cargo-generate-rpm; scripts/test.sh does): {}",
        text(&output)
    );
    rpm
}

fn rpm_query(rpm: &Path, arguments: &[&str]) -> String {
    let output = Command::new("rpm")
        .arg("-qp")
        .args(arguments)
        .arg(rpm)
        .output()
        .expect("rpm runs (apt-get install rpm; scripts/test.sh installs it)");
    assert!(
        output.status.success(),
        "rpm -qp {arguments:?}: {}",
        text(&output)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn the_rpm_holds_every_file_with_config_ini_as_a_noreplace_config_file() {
    let rpm = built_rpm();

    assert_eq!(rpm_query(rpm, &["--qf", "%{NAME}"]), "monitor_service");
    // One line per file: flags (c config, n noreplace, d doc), permissions, owner, path.
    let listing = rpm_query(
        rpm,
        &[
            "--qf",
            "[%{FILEFLAGS:fflags} %{FILEMODES:perms} %{FILEUSERNAME}:%{FILEGROUPNAME} %{FILENAMES}\n]",
        ],
    );
    let files: BTreeMap<&str, (&str, &str, &str)> = listing
        .lines()
        .map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            match fields[..] {
                [flags, perms, owner, path] => (path, (flags, perms, owner)),
                _ => panic!("odd rpm file line: {line}"),
            }
        })
        .collect();
    let mut expected = vec![
        ("/opt/monitor_service/monitor_service", "-rwxr-xr-x"),
        ("/opt/monitor_service/config.ini", "-rw-------"),
        (
            "/opt/monitor_service/scripts/stats_queries.sql",
            "-rw-r--r--",
        ),
        (
            "/usr/lib/systemd/system/monitor_service.service",
            "-rw-r--r--",
        ),
        ("/usr/share/man/man8/monitor_service.8", "-rw-r--r--"),
    ];
    if repo().join("scripts/test_alarm.sh").exists() {
        expected.push(("/opt/monitor_service/scripts/test_alarm.sh", "-rwxr-xr-x"));
    }
    let migrations: Vec<String> = std::fs::read_dir(repo().join("migrations"))
        .expect("migrations/")
        .map(|entry| {
            entry
                .expect("a migration")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .map(|name| format!("/opt/monitor_service/migrations/{name}"))
        .collect();
    expected.extend(migrations.iter().map(|path| (path.as_str(), "-rw-r--r--")));
    for (path, perms) in &expected {
        let Some((_, found, owner)) = files.get(path) else {
            panic!("the RPM lacks {path}:\n{listing}");
        };
        assert_eq!((*found, *owner), (*perms, "root:root"), "{path}");
    }
    assert_eq!(
        files.len(),
        expected.len(),
        "unexpected files in the RPM:\n{listing}"
    );

    let (flags, _, _) = files["/opt/monitor_service/config.ini"];
    assert!(
        flags.contains('c') && flags.contains('n'),
        "config.ini flags {flags:?}"
    );
    assert_eq!(
        rpm_query(rpm, &["-c"]).trim(),
        "/opt/monitor_service/config.ini",
        "rpm -qcp: the config files"
    );
}

#[test]
fn the_rpm_scriptlets_are_valid_shell_that_reload_systemd_only_where_it_runs() {
    let rpm = built_rpm();
    for tag in ["POSTIN", "PREUN", "POSTUN"] {
        let script = rpm_query(rpm, &["--qf", &format!("%{{{tag}}}")]);
        assert!(
            script.contains("/run/systemd/system"),
            "{tag} is not guarded:\n{script}"
        );
        let syntax = Command::new("sh")
            .args(["-n", "-c", &script])
            .output()
            .expect("sh runs");
        assert!(
            syntax.status.success(),
            "{tag} is not valid sh: {}\n{script}",
            text(&syntax)
        );
    }
    let postin = rpm_query(rpm, &["--qf", "%{POSTIN}"]);
    assert!(postin.contains("systemctl daemon-reload"), "{postin}");
    let preun = rpm_query(rpm, &["--qf", "%{PREUN}"]);
    assert!(
        preun.contains("disable --now monitor_service.service"),
        "{preun}"
    );
    let postun = rpm_query(rpm, &["--qf", "%{POSTUN}"]);
    assert!(postun.contains("systemctl daemon-reload"), "{postun}");
    assert!(
        postun.contains("try-restart monitor_service.service"),
        "{postun}"
    );
}
