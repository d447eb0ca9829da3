//! `vinr`: see `vinr --help`.

fn main() -> std::process::ExitCode {
    vinr_server::cli::main()
}
