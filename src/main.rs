//! The `firedrill` binary: everything lives in the library's `cli` module.

fn main() -> std::process::ExitCode {
    firedrill::cli::main()
}
