//! `tweed`: the control daemon and its CLI.

fn main() {
    println!("tweed: the control daemon is not built yet");
}
