//! Durability: a writer killed with SIGKILL loses nothing it acknowledged.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use phase_engine::{Amount, ProverIndex, Root};
use sidecar_node::{Store, StoreBatch};

const DB_ENV: &str = "SIDECAR_IT_KILL_DB";

fn round(i: u64) -> Root {
    let mut r = [0u8; 32];
    r[..8].copy_from_slice(&i.to_be_bytes());
    Root::from(r)
}

fn payload(i: u64) -> Vec<u8> {
    format!("message {i} ").repeat(1 + (i % 7) as usize).into_bytes()
}

/// Not a test of its own: the child process of `acknowledged_writes_survive_sigkill`. It writes
/// batches in a loop and prints `ack N` after batch N is committed.
#[test]
#[ignore = "helper process, run by acknowledged_writes_survive_sigkill"]
fn store_writer_child() {
    let Ok(path) = std::env::var(DB_ENV) else { return };
    let store = Store::open(std::path::Path::new(&path)).unwrap();
    let mut out = std::io::stdout().lock();
    for i in 0u64.. {
        let mut batch = StoreBatch::new();
        batch
            .put_message(round(i), [7; 32], &payload(i))
            .put_round_state(round(i), &i.to_le_bytes())
            .put_ledger_entry(round(i), 0, &payload(i))
            .add_balance(ProverIndex(i % 4), Amount(1));
        store.commit(batch).unwrap();
        use std::io::Write;
        writeln!(out, "ack {i}").unwrap();
        out.flush().unwrap();
    }
}

#[test]
fn acknowledged_writes_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kill.redb");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "store::store_writer_child",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(DB_ENV, &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut last_ack = None;
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if let Some(n) = line.strip_prefix("ack ") {
            let n: u64 = n.parse().unwrap();
            last_ack = Some(n);
            if n >= 150 {
                break;
            }
        }
    }
    child.kill().unwrap(); // SIGKILL on Unix
    child.wait().unwrap();
    let last_ack = last_ack.expect("the child acknowledged writes");
    assert!(last_ack >= 150);

    let store = Store::open(&path).unwrap();
    for i in 0..=last_ack {
        assert_eq!(store.message(round(i), [7; 32]).unwrap(), Some(payload(i)), "message {i}");
        assert_eq!(store.round_state(round(i)).unwrap(), Some(i.to_le_bytes().to_vec()));
        assert_eq!(store.ledger_entries(round(i)).unwrap(), vec![(0, payload(i))]);
    }
    // Balances: every committed batch added 1; batches after the last ack may have landed too.
    let total: i64 = store.balances().unwrap().iter().map(|(_, a)| a.0).sum();
    let committed = store.round_states().unwrap().len() as i64;
    assert!(committed > last_ack as i64);
    assert_eq!(total, committed, "balances match the committed batches exactly");
}
