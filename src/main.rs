//! The `elfuse` binary: everything lives in the library; this only hands over control.

fn main() {
    elfuse::cli::main()
}
