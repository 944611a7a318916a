//! Placeholder until the crash test lands.
fn main() {}
