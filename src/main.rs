//! The `reclife` binary: parse the command line, call the library, report errors.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
