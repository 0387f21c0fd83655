//! The `sidecar` binary, run as a user would.

use std::process::{Command, Output};

fn sidecar(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sidecar"));
    cmd.args(args).env_remove("SIDECAR_KEYSTORE_PASSWORD").env_remove("SIDECAR_CONFIG");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.output().expect("the sidecar binary runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn help_lists_every_subcommand_and_env_var() {
    let out = sidecar(&["--help"], &[]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for word in ["devnet", "run", "prover", "keys", "prove", "verify", "simulate", "SIDECAR_CONFIG"]
    {
        assert!(text.contains(word), "--help lacks {word}:\n{text}");
    }
    let out = sidecar(&["run", "--help"], &[]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("--beacon-url") && text.contains("SIDECAR_BEACON_URLS"), "{text}");
}

#[test]
fn keys_new_writes_a_private_keystore_and_never_overwrites_it() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("prover.json");
    let key_arg = key.to_str().unwrap();
    let pw_file = dir.path().join("pw");
    std::fs::write(&pw_file, "hunter2\n").unwrap();
    let env = [("SIDECAR_KEYSTORE_PASSWORD", "hunter2")];

    let out = sidecar(&["keys", "new", "--out", key_arg, "--kdf", "pbkdf2"], &env);
    assert!(out.status.success(), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let pubkey = stdout.lines().find_map(|l| l.strip_prefix("pubkey ")).unwrap().to_owned();
    assert_eq!(pubkey.len(), 2 + 96);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
    }
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&key).unwrap()).unwrap();
    assert_eq!(json["version"], 4);
    assert_eq!(json["crypto"]["kdf"]["function"], "pbkdf2");
    assert_eq!(format!("0x{}", json["pubkey"].as_str().unwrap()), pubkey);

    let before = std::fs::read(&key).unwrap();
    let again = sidecar(&["keys", "new", "--out", key_arg, "--kdf", "pbkdf2"], &env);
    assert!(!again.status.success());
    assert!(stderr(&again).contains("already exists"), "{}", stderr(&again));
    assert_eq!(std::fs::read(&key).unwrap(), before);

    let show =
        sidecar(&["keys", "show", key_arg, "--password-file", pw_file.to_str().unwrap()], &[]);
    assert!(show.status.success(), "{}", stderr(&show));
    let shown = String::from_utf8_lossy(&show.stdout);
    assert!(shown.contains(&pubkey) && shown.contains("password ok"), "{shown}");

    std::fs::write(&pw_file, "wrong\n").unwrap();
    let bad =
        sidecar(&["keys", "show", key_arg, "--password-file", pw_file.to_str().unwrap()], &[]);
    assert!(!bad.status.success());
    assert!(stderr(&bad).contains("wrong password"), "{}", stderr(&bad));

    let forced = sidecar(&["keys", "new", "--out", key_arg, "--kdf", "pbkdf2", "--force"], &env);
    assert!(forced.status.success(), "{}", stderr(&forced));
    assert_ne!(std::fs::read(&key).unwrap(), before);
}

#[test]
fn keys_new_without_a_password_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("k.json");
    let out = sidecar(&["keys", "new", "--out", key.to_str().unwrap()], &[]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("SIDECAR_KEYSTORE_PASSWORD"), "{}", stderr(&out));
    assert!(!key.exists());
}

#[test]
fn devnet_flags_are_parsed_and_bad_values_named() {
    use clap::Parser as _;
    use sidecar::cli::{Cli, Command};
    let cli = Cli::try_parse_from([
        "sidecar",
        "devnet",
        "--sidecars",
        "2",
        "--provers",
        "5",
        "--blocks",
        "50",
        "--seconds-per-slot",
        "6",
        "--min-gas",
        "1000000",
        "--max-gas",
        "2000000",
        "--prover-threads",
        "2",
        "--seed",
        "9",
        "--bench-json",
        "bench.json",
        "--beacon-address",
        "127.0.0.1:5999",
    ])
    .unwrap();
    let Command::Devnet(args) = cli.command else { panic!("not devnet") };
    assert_eq!((args.sidecars, args.provers, args.blocks), (2, 5, Some(50)));
    assert_eq!((args.seconds_per_slot, args.min_gas, args.max_gas), (6, 1_000_000, 2_000_000));
    assert_eq!((args.prover_threads, args.seed), (2, 9));
    assert_eq!(args.bench_json.as_deref(), Some(std::path::Path::new("bench.json")));
    assert_eq!(args.beacon_address, Some("127.0.0.1:5999".parse().unwrap()));
    assert!(!args.beacon_only);

    let Command::Devnet(defaults) = Cli::try_parse_from(["sidecar", "devnet"]).unwrap().command
    else {
        panic!("not devnet")
    };
    assert_eq!((defaults.sidecars, defaults.provers, defaults.blocks), (3, 8, None));
    assert_eq!(defaults.seconds_per_slot, 12);
    let opts = sidecar_devnet::DevnetOptions::from_args(&defaults, None).unwrap();
    assert!(opts.beacon_address.ip().is_loopback());
    assert_eq!(opts.beacon_address.port(), 0);
    assert!(opts.prover_threads >= 1);
    let Command::Devnet(late_kill) = Cli::try_parse_from([
        "sidecar",
        "devnet",
        "--chaos",
        "restart",
        "--kill-at",
        "200",
        "--blocks",
        "210",
    ])
    .unwrap()
    .command
    else {
        panic!("not devnet")
    };
    let opts = sidecar_devnet::DevnetOptions::from_args(&late_kill, None).unwrap();
    assert_eq!(opts.chaos.map(|c| (c.restart, c.kill_at)), Some((true, 200)));

    for (args, named) in [
        (&["devnet", "--sidecars", "0"][..], "--sidecars"),
        (&["devnet", "--seconds-per-slot", "0"][..], "--seconds-per-slot"),
        (&["devnet", "--blocks", "0"][..], "--blocks"),
        (&["devnet", "--min-gas", "10", "--max-gas", "5"][..], "--min-gas"),
        (&["devnet", "--rewards", "/nonexistent/rewards.toml"][..], "/nonexistent/rewards.toml"),
        (&["devnet", "--kill-at", "40"][..], "--kill-at"),
        (&["devnet", "--chaos", "late-gossip", "--kill-at", "40"][..], "--kill-at"),
        (&["devnet", "--chaos", "restart", "--kill-at", "40", "--blocks", "44"][..], "at least 45"),
    ] {
        let out = sidecar(args, &[]);
        assert!(!out.status.success(), "{args:?}");
        assert!(stderr(&out).contains(named), "{args:?}: {}", stderr(&out));
    }
}

/// Sends SIGINT (what Ctrl-C sends) to a child process.
#[cfg(unix)]
fn interrupt(child: &std::process::Child) {
    let status = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
}

/// Reads lines of `child`'s stdout until one contains `needle`; returns it.
#[cfg(unix)]
fn line_with(lines: &mut impl Iterator<Item = std::io::Result<String>>, needle: &str) -> String {
    for line in lines {
        let line = line.unwrap();
        if line.contains(needle) {
            return line;
        }
    }
    panic!("no line with {needle}");
}

/// `sidecar devnet --beacon-only` serves the devnet beacon node; `sidecar run` follows it; on
/// Ctrl-C both stop cleanly with status 0, and the sidecar's store reopens.
#[cfg(unix)]
#[test]
fn beacon_only_devnet_and_run_stop_cleanly_on_ctrl_c() {
    use std::io::BufRead as _;
    use std::process::Stdio;
    let dir = tempfile::tempdir().unwrap();
    let mut beacon = Command::new(env!("CARGO_BIN_EXE_sidecar"))
        .args(["devnet", "--beacon-only", "--beacon-address", "127.0.0.1:0"])
        .args(["--seconds-per-slot", "1", "--min-gas", "100000", "--max-gas", "200000"])
        .env_remove("SIDECAR_CONFIG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(beacon.stdout.take().unwrap()).lines();
    let first = line_with(&mut lines, "devnet beacon node");
    let url = first.split_whitespace().find(|w| w.starts_with("http://")).unwrap().to_owned();
    line_with(&mut lines, "head slot");

    let data = dir.path().join("sidecar");
    let mut run = Command::new(env!("CARGO_BIN_EXE_sidecar"))
        .args(["--data-dir", data.to_str().unwrap(), "--http-address", "127.0.0.1:0"])
        .args(["run", "--beacon-url", &url, "--p2p-port", "0", "--discovery-port", "0"])
        .args(["--listen-address", "127.0.0.1"])
        .env_remove("SIDECAR_CONFIG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut run_lines = std::io::BufReader::new(run.stdout.take().unwrap()).lines();
    line_with(&mut run_lines, "proving API");
    // Let it follow a block or two.
    line_with(&mut lines, "head slot");
    line_with(&mut lines, "head slot");

    interrupt(&run);
    let out = run.wait_with_output().unwrap();
    assert!(out.status.success(), "sidecar run: {}", stderr(&out));
    interrupt(&beacon);
    let out = beacon.wait_with_output().unwrap();
    assert!(out.status.success(), "devnet --beacon-only: {}", stderr(&out));
    // The store was closed: it opens again (redb refuses a database still held open).
    sidecar_node::Store::open(&data.join("node.redb")).unwrap();
}

#[test]
fn run_fails_clearly_without_a_beacon_node() {
    let dir = tempfile::tempdir().unwrap();
    let out = sidecar(
        &["--data-dir", dir.path().to_str().unwrap(), "run", "--beacon-url", "http://127.0.0.1:1"],
        &[],
    );
    assert!(!out.status.success());
    assert!(stderr(&out).contains("beacon node"), "{}", stderr(&out));
}

#[test]
fn bad_arguments_and_config_are_named() {
    let out = sidecar(&["devnet", "--provers", "0"], &[]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--provers"), "{}", stderr(&out));

    let out = sidecar(&["prover"], &[]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("prover.key_file"), "{}", stderr(&out));

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sidecar.toml");
    std::fs::write(&config, "[p2p]\ntopic_prefix = \"bad/prefix\"\n").unwrap();
    let out = sidecar(&["--config", config.to_str().unwrap(), "run"], &[]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("p2p.topic_prefix"), "{}", stderr(&out));

    std::fs::write(&config, "[beacon]\nurls = [\"http://127.0.0.1:5052\"]\n").unwrap();
    // The environment overrides the file: the bad URL from the environment is the one reported.
    let out = sidecar(
        &["--config", config.to_str().unwrap(), "run"],
        &[("SIDECAR_BEACON_URLS", "ftp://from-env")],
    );
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("beacon.urls") && err.contains("ftp://from-env"), "{err}");
    // And the flag overrides the environment.
    let out = sidecar(
        &[
            "--config",
            config.to_str().unwrap(),
            // The node key is made before the beacon node is asked: keep it out of the tree.
            "--data-dir",
            dir.path().join("data").to_str().unwrap(),
            "run",
            "--beacon-url",
            "http://127.0.0.1:1",
        ],
        &[("SIDECAR_BEACON_URLS", "ftp://from-env")],
    );
    // The flag's URL is the one tried (nothing listens there).
    assert!(stderr(&out).contains("beacon node"), "{}", stderr(&out));
}

#[test]
fn shipped_config_file_loads() {
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/../../configs/sidecar.toml");
    // The file loads (no config error); the devnet then stops at its own argument check.
    let out = sidecar(&["--config", config, "devnet", "--provers", "0"], &[]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("--provers") && !err.contains("config"), "{err}");
}

/// `sidecar simulate` end to end: the table on stdout, the files in `--out`, and a sweep.
#[test]
fn the_command_writes_tables_files_and_plots() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_sidecar"))
            .current_dir(root)
            .args(args)
            .output()
            .expect("run sidecar")
    };
    let o = run(&[
        "simulate",
        "--scenario",
        "configs/scenarios/small.toml",
        "--blocks",
        "6",
        "--out",
        out.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(stdout.contains("honest") && stdout.contains("ledger root"), "{stdout}");
    for f in [
        "ledger.csv",
        "ledger.json",
        "provers.csv",
        "provers.json",
        "blocks.csv",
        "summary.json",
        "rewards_by_behaviour.png",
        "rewards_by_behaviour.svg",
        "finalising_phase.png",
        "balances.svg",
    ] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    let sweep = dir.path().join("sweep");
    let o = run(&[
        "simulate",
        "--scenario",
        "configs/scenarios/small.toml",
        "--blocks",
        "3",
        "--quiet",
        "--sweep",
        "REWARD_T2_PROVER=0..200:100",
        "--out",
        sweep.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(o.stdout.is_empty(), "--quiet prints nothing");
    let csv = std::fs::read_to_string(sweep.join("sweep.csv")).unwrap();
    assert_eq!(csv.lines().filter(|l| l.starts_with("REWARD_T2_PROVER,")).count(), 3 * 3);
    assert!(sweep.join("sweep_reward.png").is_file() && sweep.join("sweep_phases.svg").is_file());
    // A bad key is named.
    let o = run(&["simulate", "--quiet", "--set", "NO_SUCH_KEY=1"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("NO_SUCH_KEY"));
}

/// `sidecar db stats` and `sidecar db compact` on a store a node wrote: sizes per table (text and
/// JSON), compaction keeps the data; a data directory without a store is a clear error, and
/// nothing is created there.
#[test]
fn db_stats_and_compact_read_the_store_and_refuse_a_missing_one() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    {
        let store = sidecar_node::Store::open(&data.join("node.redb")).unwrap();
        let mut batch = sidecar_node::StoreBatch::new();
        batch.put_message(phase_engine::Root::repeat_byte(1), [2; 32], &[3; 1000]);
        store.commit(batch).unwrap();
    }
    let data_arg = data.to_str().unwrap();
    let out = sidecar(&["--data-dir", data_arg, "db", "stats"], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("node.redb") && text.contains("messages"), "{text}");
    let out = sidecar(&["--data-dir", data_arg, "db", "stats", "--json"], &[]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let messages = &json["tables"][0];
    assert_eq!(
        (messages["name"].as_str(), messages["entries"].as_u64()),
        (Some("messages"), Some(1))
    );

    let out = sidecar(&["--data-dir", data_arg, "db", "compact"], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains(" -> "));
    let store = sidecar_node::Store::open(&data.join("node.redb")).unwrap();
    assert_eq!(store.messages(phase_engine::Root::repeat_byte(1)).unwrap().len(), 1);
    drop(store);

    let empty = dir.path().join("empty");
    let out = sidecar(&["--data-dir", empty.to_str().unwrap(), "db", "stats"], &[]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("node.redb"), "{}", stderr(&out));
    assert!(!empty.exists());
}
