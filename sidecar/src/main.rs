//! The `sidecar` binary.

fn main() {
    println!("sidecar: under construction");
}
