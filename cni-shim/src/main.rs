//! `tweed-cni`: the CNI plugin.

fn main() {
    println!("tweed-cni: not built yet");
}
